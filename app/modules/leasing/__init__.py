"""The leasing module: Pending leasing approvals from Yardi."""

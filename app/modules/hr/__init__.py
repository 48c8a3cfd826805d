"""The hr module: Worker profiles from Oracle Fusion HCM and pending HR approvals."""

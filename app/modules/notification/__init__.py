"""The notification module: Device tokens, stored notifications and push delivery."""

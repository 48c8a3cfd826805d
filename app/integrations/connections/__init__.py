"""Per-organisation integration connections (tenancy is core): model, secrets, service, CLI."""

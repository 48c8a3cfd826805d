"""The ground floor: settings, database, errors, logging, security, tenancy and shared schemas."""

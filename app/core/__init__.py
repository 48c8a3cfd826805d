"""Shared infrastructure: settings, database, errors, logging, security and HTTP resilience."""

"""Run alembic programmatically (CLI, ``make run`` and the test suite share this)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config

from app.core.settings import PROJECT_ROOT


def alembic_config(database_url: str) -> Config:
    """Return the project's alembic config pointed at ``database_url``."""
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Apply migrations up to ``revision`` (blocking; call outside a running event loop)."""
    command.upgrade(alembic_config(database_url), revision)

"""Settings of the task inboxes (``INBOX_``), shared by the three modules."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class InboxSettings(BaseSettings):
    """How the inboxes sync, read and act."""

    model_config = SettingsConfigDict(
        env_prefix="INBOX_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    refresh_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    """How long ``GET /{m}/tasks?refresh=true`` waits for the source before answering from
    the local copy."""
    action_lease_seconds: float = Field(default=120.0, gt=0)
    """How long an action holds its task: a crash mid-action frees the task after this."""
    bulk_concurrency: int = Field(default=4, ge=1, le=50)
    """Source calls one bulk request makes at once."""
    idempotency_ttl_hours: float = Field(default=24.0, ge=24)
    """How long an ``Idempotency-Key``'s first answer is kept (at least a day)."""
    prune_cron: str = "50 3 * * *"
    """When each inbox's ``<m>.idempotency.prune`` job forgets the expired keys (crontab, five
    fields; the scheduler refuses one that does not parse, naming this setting)."""


@lru_cache
def get_inbox_settings() -> InboxSettings:
    """Return the inbox settings (cached; tests clear the cache)."""
    return InboxSettings()

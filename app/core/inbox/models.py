"""Column mixins of the four tables every inbox module declares under its own names.

- the user's inbox (``<m>_inboxes``): who the user is at the source, a read model fed by the
  user module's events, and when the source last confirmed the whole inbox (``synced_at``);
- its tasks (``<m>_tasks``): one row per organisation, user and source task, ever;
- the audit trail (``<m>_approvals``): one record per action attempt, written by a durable
  listener from the module's ``audit.<m>.approval`` event;
- idempotency records (``<m>_idempotency_keys``): the first answer to an ``Idempotency-Key``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from app.core.db import utcnow

JSONType = JSON().with_variant(JSONB(), "postgresql")

PENDING = "pending"
TASK_STATUSES = ("pending", "approved", "rejected", "closed")
"""``pending`` at the source; ``approved``/``rejected`` here; ``closed`` when it left the source."""


def _organization() -> Mapped[uuid.UUID]:
    return mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))


class InboxUserColumns:
    """A user's inbox at one source: their identity there and the inbox's freshness."""

    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)

    @declared_attr
    def organization_id(cls) -> Mapped[uuid.UUID]:
        return _organization()

    email: Mapped[str | None] = mapped_column(String(320))
    oracle_username: Mapped[str | None] = mapped_column(String(200))
    person_number: Mapped[str | None] = mapped_column(String(50))
    user_type: Mapped[str | None] = mapped_column(String(20))
    is_active: Mapped[bool] = mapped_column(default=True)
    synced_at: Mapped[datetime | None]
    """When the source last answered a full listing of the inbox."""
    sync_attempted_at: Mapped[datetime | None]
    sync_error: Mapped[str | None] = mapped_column(String(100))
    """The error code of the last sync when it failed; None after a good one."""


class InboxTaskColumns:
    """One source task in one user's inbox."""

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)

    @declared_attr
    def organization_id(cls) -> Mapped[uuid.UUID]:
        return _organization()

    user_id: Mapped[uuid.UUID]
    task_id: Mapped[str] = mapped_column(String(200))
    """The source's id of the task (a BPM task number, a Yardi record id)."""
    source_ref: Mapped[str | None] = mapped_column(String(200))
    """What else the source needs to find the task (Yardi's workflow name)."""
    title: Mapped[str] = mapped_column(String(500))
    summary: Mapped[str | None] = mapped_column(String(1000))
    status: Mapped[str] = mapped_column(String(20), default=PENDING)
    close_reason: Mapped[str | None] = mapped_column(String(30))
    priority: Mapped[int | None]
    assigned_at: Mapped[datetime | None]
    due_at: Mapped[datetime | None]
    source_updated_at: Mapped[datetime | None]
    sort_at: Mapped[datetime]
    """The list's order, newest first: ``assigned_at``, or when the task was first seen."""
    synced_at: Mapped[datetime]
    """When the source last confirmed the row."""
    closed_at: Mapped[datetime | None]
    claimed_until: Mapped[datetime | None]
    """An action on the task is under way until then: a second one waits its turn."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Any, ...]:
        name: str = cls.__tablename__  # type: ignore[attr-defined]
        return (
            UniqueConstraint("organization_id", "user_id", "task_id"),
            Index(f"ix_{name}_inbox", "organization_id", "user_id", "status", "sort_at"),
        )


class ApprovalColumns:
    """One action attempt on a task, succeeded or failed: the audit trail."""

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    """The approval id the action answered with (so a redelivery writes nothing twice)."""

    @declared_attr
    def organization_id(cls) -> Mapped[uuid.UUID]:
        return _organization()

    user_id: Mapped[uuid.UUID]
    task_id: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(20))
    comment: Mapped[str | None] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(String(20))
    error_code: Mapped[str | None] = mapped_column(String(100))
    title: Mapped[str | None] = mapped_column(String(500))
    acted_at: Mapped[datetime]
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Any, ...]:
        name: str = cls.__tablename__  # type: ignore[attr-defined]
        return (
            Index(f"ix_{name}_org_time", "organization_id", "acted_at"),
            Index(f"ix_{name}_user_time", "organization_id", "user_id", "acted_at"),
        )


class IdempotencyColumns:
    """The first answer to a user's ``Idempotency-Key`` (kept at least a day)."""

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)

    @declared_attr
    def organization_id(cls) -> Mapped[uuid.UUID]:
        return _organization()

    user_id: Mapped[uuid.UUID]
    key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None]
    """None while the first request is under way."""
    response: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Any, ...]:
        return (UniqueConstraint("organization_id", "user_id", "key"),)

"""The outbox tables: one row per stored event, one row per (event, durable listener) delivery.

A delivery moves ``pending`` -> ``running`` (claimed under a lease) -> ``done``; a failure
returns it to ``pending`` with a later ``available_at`` until its listener's ``max_attempts``,
then it is ``dead`` (a dead letter) until an operator retries or discards it.
"""

from __future__ import annotations

import math
import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, Timestamps, utcnow

JSONType = JSON().with_variant(JSONB(), "postgresql")
"""JSON on SQLite, JSONB on PostgreSQL."""

DeliveryId = BigInteger().with_variant(Integer(), "sqlite")
"""A 64-bit identity on PostgreSQL; SQLite only auto-increments ``INTEGER PRIMARY KEY``."""


class DeliveryStatus(StrEnum):
    """Where a delivery is in its life."""

    PENDING = "pending"
    """Waiting for a relay (its first attempt, or a retry once ``available_at`` passes)."""
    RUNNING = "running"
    """Claimed by a relay, under a lease."""
    DONE = "done"
    """The listener succeeded; its writes committed with this status."""
    DEAD = "dead"
    """A dead letter: attempts exhausted, a "don't retry" error, or a payload that no longer
    validates. It stays until an operator retries or discards it, and holds back the later
    deliveries of its listener and ordering key meanwhile (see ``HOLDING_STATUSES``)."""
    DISCARDED = "discarded"
    """An operator gave up on it."""


OPEN_STATUSES = (DeliveryStatus.PENDING.value, DeliveryStatus.RUNNING.value)
"""A delivery in one of these states still has work to do."""

HOLDING_STATUSES = (*OPEN_STATUSES, DeliveryStatus.DEAD.value)
"""A delivery in one of these states holds back the later deliveries of its listener and
ordering key: they wait until it is done or discarded. A dead letter holds them until an
operator retries it (and it succeeds) or discards it, as ordered queues do (a Kafka partition,
an SQS FIFO message group). A running delivery also holds back earlier ones (one retried
meanwhile): the deliveries of one key never run concurrently."""

_HOLDING_PREDICATE = "ordering_key IS NOT NULL AND status IN ({})".format(
    ", ".join(f"'{status}'" for status in HOLDING_STATUSES)
)

_RUNNING_KEYED = "ordering_key IS NOT NULL AND status = 'running'"
_DUE = "status = 'pending' AND NOT held"
_DEAD_KEYED = "ordering_key IS NOT NULL AND status = 'dead'"
RUNNING_KEY_INDEX = "uq_outbox_deliveries_running_key"
"""The unique index that refuses a second running delivery of one listener and key."""


class OutboxEvent(Base):
    """One emitted event that had durable listeners: its envelope and its JSON payload."""

    __tablename__ = "outbox_events"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer)
    organization_id: Mapped[uuid.UUID | None]
    correlation_id: Mapped[str] = mapped_column(String(200))
    causation_id: Mapped[uuid.UUID | None]
    occurred_at: Mapped[datetime]
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    ordering_key: Mapped[str | None] = mapped_column(String(200))
    dedupe_key: Mapped[str | None] = mapped_column(String(200))
    traceparent: Mapped[str | None] = mapped_column(String(64))
    """The emit's W3C trace context (tracing on), continued by every delivery of the event."""

    __table_args__ = (
        # Only events with a dedupe key are indexed: the emit path stays one index insert
        # (the time-ordered primary key), which also serves pruning and replay by time.
        Index(
            "uq_outbox_events_name_dedupe_key_org",
            "name",
            "dedupe_key",
            "organization_id",
            unique=True,
            postgresql_where=text("dedupe_key IS NOT NULL"),
            sqlite_where=text("dedupe_key IS NOT NULL"),
        ),
    )


class OutboxDelivery(Timestamps, Base):
    """One durable listener's delivery of one stored event."""

    __tablename__ = "outbox_deliveries"

    id: Mapped[int] = mapped_column(DeliveryId, primary_key=True, autoincrement=True)
    event_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("outbox_events.id", ondelete="CASCADE"), index=True
    )
    listener_id: Mapped[str] = mapped_column(String(200))
    event_name: Mapped[str] = mapped_column(String(200))
    ordering_key: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    available_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_until: Mapped[datetime | None]
    lease_token: Mapped[uuid.UUID | None]
    worker: Mapped[str | None] = mapped_column(String(200))
    last_error: Mapped[str | None] = mapped_column(Text)
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    """Every failed attempt: ``attempt``, ``at``, ``type``, ``message``, ``traceback``."""
    completed_at: Mapped[datetime | None]
    held: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    """Pending behind a dead letter of its listener and ordering key: the claim's index skips
    it, so a claim costs the same whatever the number of held deliveries. Set when the dead
    letter appears (or when the delivery is written after it), cleared when an operator
    retries or discards the dead letter."""

    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'running', 'done', 'dead', 'discarded')", name="status"
        ),
        Index("ix_outbox_deliveries_status_available_at", "status", "available_at"),
        # What the claim scans: due deliveries, without those held behind a dead letter.
        Index(
            "ix_outbox_deliveries_due",
            "available_at",
            "id",
            postgresql_where=text(_DUE),
            sqlite_where=text(_DUE),
        ),
        # Does a new delivery's key have a dead letter? (it is then written held)
        Index(
            "ix_outbox_deliveries_dead_key",
            "listener_id",
            "ordering_key",
            postgresql_where=text(_DEAD_KEYED),
            sqlite_where=text(_DEAD_KEYED),
        ),
        # The claim asks, per keyed candidate, whether a delivery of its key holds it back;
        # indexing only those (not the done history of the key) keeps that probe small.
        Index(
            "ix_outbox_deliveries_ordering_holding",
            "listener_id",
            "ordering_key",
            "id",
            postgresql_where=text(_HOLDING_PREDICATE),
            sqlite_where=text(_HOLDING_PREDICATE),
        ),
        # The claim's check is a snapshot; this makes "one running delivery per listener and
        # key" a fact of the database, even when two relays claim at the same moment.
        Index(
            RUNNING_KEY_INDEX,
            "listener_id",
            "ordering_key",
            unique=True,
            postgresql_where=text(_RUNNING_KEYED),
            sqlite_where=text(_RUNNING_KEYED),
        ),
    )

    @property
    def idempotency_key(self) -> str:
        """The key a listener passes to external calls: stable across retries and replays."""
        return idempotency_key(self.event_id, self.listener_id)


_MAX_MILLIS = 2**48 - 1
"""The largest millisecond count a UUIDv7 holds."""


def first_id_at(moment: datetime, *, offset_ms: int = 0) -> uuid.UUID:
    """Return the smallest event id emitted at ``moment`` or later (ids are time-ordered).

    Event ids follow the UUIDv7 layout, milliseconds first, so a time range of events is a
    range of the primary key. Times outside what the layout holds (before 1970, or after the
    year 10889) are clamped to the first or last id.

    Args:
        moment: the time (aware).
        offset_ms: milliseconds to add, for an exclusive upper bound (``offset_ms=1``).
    """
    millis = math.floor(moment.timestamp() * 1000) + offset_ms
    return uuid.UUID(int=min(max(millis, 0), _MAX_MILLIS) << 80)


def idempotency_key(event_id: uuid.UUID, listener_id: str) -> str:
    """Return the stable idempotency key of a delivery: the event id and the listener id."""
    return f"{event_id}:{listener_id}"

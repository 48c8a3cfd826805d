"""Tables of the notification module: devices, their topics, notifications, pushes, preferences."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, UUIDPrimaryKey, utcnow

UNREAD = text("read_at IS NULL AND resolved_at IS NULL")
SCHEDULED = text("status = 'scheduled'")


class Device(UUIDPrimaryKey, Base):
    """A push token of one user. A token belongs to one user at a time (unique by digest)."""

    __tablename__ = "notification_devices"
    __table_args__ = (Index("ix_notification_devices_user_active", "user_id", "is_active"),)

    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"))
    user_id: Mapped[uuid.UUID]
    token: Mapped[str] = mapped_column(String(4096))
    token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    """SHA-256 of the token: tokens may be longer than a B-tree entry allows."""
    platform: Mapped[str] = mapped_column(String(20))
    name: Mapped[str | None] = mapped_column(String(200))
    session_id: Mapped[uuid.UUID | None]
    """The auth session that registered it at login (logout deactivates it)."""
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    deactivated_at: Mapped[datetime | None]
    deactivated_reason: Mapped[str | None] = mapped_column(String(40))


class DeviceTopic(Base):
    """A topic a device's token is subscribed to at FCM, as recorded when it was subscribed."""

    __tablename__ = "notification_device_topics"

    device_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("notification_devices.id", ondelete="CASCADE"), primary_key=True
    )
    topic: Mapped[str] = mapped_column(String(900), primary_key=True)
    subscribed_at: Mapped[datetime] = mapped_column(default=utcnow)


class Push(UUIDPrimaryKey, Base):
    """One push to a user's devices: the notifications that arrived within one window.

    At most one push per user is ``scheduled`` (a partial unique index): a notification that
    arrives while one is open joins it, so the tasks of one sync become one summary push.
    """

    __tablename__ = "notification_pushes"
    __table_args__ = (
        Index(
            "uq_notification_pushes_open",
            "user_id",
            unique=True,
            sqlite_where=SCHEDULED,
            postgresql_where=SCHEDULED,
        ),
    )

    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"))
    user_id: Mapped[uuid.UUID]
    status: Mapped[str] = mapped_column(String(20), default="scheduled")
    """``scheduled``, ``sent`` or ``skipped`` (nothing left to push, or no device)."""
    due_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    notifications: Mapped[int] = mapped_column(default=0)
    """How many notifications the sent push summed up."""
    devices: Mapped[int] = mapped_column(default=0)
    delivered: Mapped[int] = mapped_column(default=0)
    idempotency_key: Mapped[str | None] = mapped_column(String(200))


class Notification(UUIDPrimaryKey, Base):
    """One notification per user, module and task: the database refuses a second one."""

    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("user_id", "module", "task_id"),
        Index("ix_notifications_user_created", "user_id", "created_at"),
        Index(
            "ix_notifications_unread",
            "user_id",
            sqlite_where=UNREAD,
            postgresql_where=UNREAD,
        ),
    )

    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"))
    user_id: Mapped[uuid.UUID]
    kind: Mapped[str] = mapped_column(String(40), default="task.received")
    module: Mapped[str] = mapped_column(String(20))
    task_id: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str | None] = mapped_column(String(1000))
    sync_id: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    read_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    push_status: Mapped[str] = mapped_column(String(20), default="pending")
    """``pending`` (waiting in a push), ``sent``, ``off`` (the user's preference), ``skipped``
    (read, resolved or no device by the time the push went out)."""
    push_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("notification_pushes.id", ondelete="SET NULL"), index=True
    )


class TaskClosure(Base):
    """A task closed before its notification was stored (``task.closed`` delivered before
    ``task.received``): the receive then stores the notification resolved, and pushes nothing."""

    __tablename__ = "notification_task_closures"

    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    module: Mapped[str] = mapped_column(String(20), primary_key=True)
    task_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"))
    closed_at: Mapped[datetime]


class Preference(Base):
    """A user's push preferences; no row means the defaults (push on, no quiet hours)."""

    __tablename__ = "notification_preferences"

    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"))
    push_procurement: Mapped[bool] = mapped_column(default=True)
    push_hr: Mapped[bool] = mapped_column(default=True)
    push_leasing: Mapped[bool] = mapped_column(default=True)
    quiet_start: Mapped[str | None] = mapped_column(String(5))
    """``HH:MM`` in ``time_zone``."""
    quiet_end: Mapped[str | None] = mapped_column(String(5))
    time_zone: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

"""Events published by the notification module (its own durable follow-ups)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import ClassVar

from app.events import Event


class DeviceRegistered(Event):
    """A push device was registered or moved: its topic subscriptions are brought up to date."""

    name: ClassVar[str] = "notification.device.registered"

    device_id: uuid.UUID
    user_id: uuid.UUID

    def ordering_key(self) -> str | None:
        # A device's subscribe and unsubscribe run in the order they were asked for.
        return f"device:{self.device_id}"


class DeviceDeactivated(Event):
    """A push device stopped receiving (logout, removal, user deleted): its topics are left."""

    name: ClassVar[str] = "notification.device.deactivated"

    device_id: uuid.UUID
    user_id: uuid.UUID
    reason: str

    def ordering_key(self) -> str | None:
        return f"device:{self.device_id}"


class PushScheduled(Event):
    """A push to one user's devices is due when its window closes (it may sum up many tasks)."""

    name: ClassVar[str] = "notification.push.scheduled"

    push_id: uuid.UUID
    user_id: uuid.UUID
    due_at: datetime | None = None
    """When the window (or the user's quiet hours) ends: its delivery is written due then."""

    def deliver_at(self) -> datetime | None:
        return self.due_at


class PushResendScheduled(Event):
    """Some devices of a sent push failed with an error that may pass (``UNAVAILABLE``,
    ``INTERNAL``, ``QUOTA_EXCEEDED``): the same push goes to those devices again, and only to
    them, when ``due_at`` comes."""

    name: ClassVar[str] = "notification.push_resend.scheduled"

    push_id: uuid.UUID
    user_id: uuid.UUID
    device_ids: tuple[uuid.UUID, ...]
    round: int = 1
    """1 for the first resend; each round that still leaves devices failing schedules the next."""
    due_at: datetime | None = None

    def deliver_at(self) -> datetime | None:
        return self.due_at

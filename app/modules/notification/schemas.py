"""Request and response bodies of the notification module."""

from __future__ import annotations

import uuid
from datetime import datetime
from functools import cache
from typing import Literal
from zoneinfo import available_timezones

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.contracts.auth import Platform
from app.core.schemas import RequestBody

HHMM = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
MODULES = ("procurement", "hr", "leasing")
Module = Literal["procurement", "hr", "leasing"]


@cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


class DeviceCreate(RequestBody):
    token: str = Field(min_length=1, max_length=4096)
    platform: Platform
    name: str | None = Field(default=None, min_length=1, max_length=200)

    @field_validator("token")
    @classmethod
    def _no_blanks(cls, value: str) -> str:
        if any(c.isspace() for c in value):
            raise ValueError("a push token has no spaces")
        return value


class DeviceRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    token: str
    platform: Platform
    name: str | None
    is_active: bool
    created_at: datetime
    last_seen_at: datetime


class NotificationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    kind: str
    module: Module
    task_id: str
    title: str
    body: str | None
    created_at: datetime
    read_at: datetime | None
    resolved_at: datetime | None


class UnreadCount(BaseModel):
    count: int


class ReadAll(BaseModel):
    updated: int
    """How many notifications changed from unread to read."""


class PushTotals(BaseModel):
    """What the organisation's pushes did over a window (the admin console's figure)."""

    since: datetime
    pushes: int
    """Pushes sent (one per user and window: a summary counts once)."""
    notifications: int
    """Notifications those pushes carried."""
    delivered: int
    """Devices that accepted one (FCM answered with a message id)."""


class PushPreferences(RequestBody):
    procurement: bool = True
    hr: bool = True
    leasing: bool = True


class QuietHoursIn(RequestBody):
    start: str = Field(pattern=HHMM, description="HH:MM, local time")
    end: str = Field(pattern=HHMM, description="HH:MM, local time")
    time_zone: str = Field(min_length=1, max_length=64, description="An IANA time zone")

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if value not in _zones():
            raise ValueError("unknown IANA time zone")
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHoursIn:
        if self.start == self.end:
            raise ValueError("quiet hours need an end that differs from their start")
        return self


class Preferences(RequestBody):
    push: PushPreferences = Field(default_factory=PushPreferences)
    quiet_hours: QuietHoursIn | None = None

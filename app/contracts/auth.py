"""Events published by the auth module."""

from __future__ import annotations

import uuid
from typing import ClassVar, Literal

from pydantic import Field

from app.contracts.common import Snapshot
from app.events import Event

Platform = Literal["android", "ios", "web"]


class Device(Snapshot):
    """The push device a client registered at login."""

    token: str = Field(min_length=1, max_length=4096)
    platform: Platform
    name: str | None = Field(default=None, max_length=200)


class UserLoggedIn(Event):
    """A user logged in; ``device`` is set when the client registered one."""

    name: ClassVar[str] = "auth.login"

    user_id: uuid.UUID
    session_id: uuid.UUID
    device: Device | None = None


class UserLoggedOut(Event):
    """A session ended; ``device_token`` is the push token bound to it, if any."""

    name: ClassVar[str] = "auth.logout"

    user_id: uuid.UUID
    session_id: uuid.UUID
    device_token: str | None = None

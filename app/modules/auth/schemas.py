"""Request and response bodies of the auth module."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, EmailStr, Field

from app.contracts.auth import Device, Platform
from app.core.schemas import RequestBody


class DeviceIn(RequestBody):
    """The push device to bind to this session."""

    token: str = Field(min_length=1, max_length=4096)
    platform: Platform
    name: str | None = Field(default=None, max_length=200)

    def to_contract(self) -> Device:
        return Device(token=self.token, platform=self.platform, name=self.name)


class LoginRequest(RequestBody):
    email: EmailStr = Field(max_length=320)
    password: str = Field(min_length=1, max_length=1024)
    device: DeviceIn | None = None
    organization_id: uuid.UUID | None = Field(
        default=None,
        description="Only needed when the same email and password exist in several organisations.",
    )


class RefreshRequest(RequestBody):
    refresh_token: str = Field(min_length=1, max_length=512)


class LogoutMobileRequest(RequestBody):
    device_token: str | None = Field(
        default=None,
        min_length=1,
        max_length=4096,
        description=(
            "The push token to release: only the one bound to this session at login is "
            "accepted (403 device_not_bound otherwise); it is released when omitted too."
        ),
    )


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Seconds until the access token expires.")

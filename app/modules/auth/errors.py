"""Errors of the auth module (token errors shared with every module live in app.core.security)."""

from __future__ import annotations

import uuid
from typing import Any

from app.core.errors import AppError, Forbidden, TooManyRequests, Unauthorized


class InvalidCredentials(Unauthorized):
    code = "invalid_credentials"
    detail = "The email or password is wrong."


class LoginThrottled(TooManyRequests):
    code = "login_throttled"
    detail = "Too many failed logins; retry later."


class DeviceNotBound(Forbidden):
    code = "device_not_bound"
    detail = "This device token is not the one bound to your session; nothing was logged out."


class OrganizationRequired(AppError):
    status = 409
    code = "organization_required"
    detail = "These credentials match accounts in several organisations; send organization_id."


class RefreshTokenReused(Unauthorized):
    code = "refresh_token_reused"
    detail = "This refresh token was already used; the whole session is revoked."

    def __init__(self, session_id: uuid.UUID, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.session_id = session_id

"""Errors of the auth module (token errors shared with every module live in app.core.security)."""

from __future__ import annotations

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
    commit = True  # the attempt was no wrong guess: taking it back commits


class RefreshTokenReused(Unauthorized):
    code = "refresh_token_reused"
    detail = "This refresh token was already used; the whole session is revoked."
    commit = True  # the revocation of the session outlives the failed refresh

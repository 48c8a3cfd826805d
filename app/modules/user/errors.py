"""Errors of the user module (``user_not_employee`` is shared: app.core.security)."""

from __future__ import annotations

from app.core.errors import AppError, Conflict, NotFound, UpstreamError


class UserNotFound(NotFound):
    code = "user_not_found"
    detail = "No user of your organisation has this id."


class EmailTaken(Conflict):
    code = "email_taken"
    detail = "A user of this organisation already has this email."


class UserIsDeleted(Conflict):
    code = "user_deleted"
    detail = "This user was deleted and can no longer change."


class UserInactive(Conflict):
    code = "user_inactive"
    detail = "This user is deactivated."


class CannotChangeOwnAccess(Conflict):
    code = "cannot_change_own_access"
    detail = "Admins cannot delete, deactivate or demote themselves."


class OrganizationExists(Conflict):
    code = "organization_exists"
    detail = "An organisation with this name already exists."


class ProfileSyncFailed(UpstreamError):
    code = "profile_sync_failed"
    detail = "The profile could not be read from Oracle Fusion; retry later."


class SessionRevocationFailed(AppError):
    status = 503
    code = "session_revocation_failed"
    detail = (
        "The user's sessions could not be ended or updated, so nothing was changed; retry later."
    )

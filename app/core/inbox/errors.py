"""Errors of the task inboxes, each rendered as problem+json with a stable ``code``."""

from __future__ import annotations

from typing import Any

from app.core.errors import AppError, Conflict, Forbidden, NotFound


class TaskNotFound(NotFound):
    code = "task_not_found"
    detail = "No task of your inbox has this id."


class TaskAlreadyDecided(Conflict):
    code = "task_already_decided"
    detail = "The task was already decided, withdrawn or reassigned at its source."


class TaskActionInProgress(Conflict):
    code = "task_action_in_progress"
    detail = "Another action on this task is under way; read the task again in a moment."


class ActionNotAllowed(AppError):
    status = 422
    code = "action_not_allowed"
    detail = "The source does not offer this action on this task now."


class IdempotencyKeyReused(AppError):
    status = 422
    code = "idempotency_key_reused"
    detail = "This Idempotency-Key was used with a different request."


class IdempotencyKeyInProgress(Conflict):
    code = "idempotency_key_in_progress"
    detail = "The first request with this Idempotency-Key is still under way; retry shortly."


class InvalidIdempotencyKey(AppError):
    status = 422
    code = "invalid_idempotency_key"
    detail = "The Idempotency-Key header must be 1 to 200 printable characters."


class ApprovalsForbidden(Forbidden):
    code = "approvals_forbidden"
    detail = "Only an admin may read another user's approvals."


class InvalidTimeRange(AppError):
    status = 422
    code = "invalid_time_range"
    detail = "'from' must not be after 'to'."


class UpstreamUnavailable(AppError):
    status = 503
    code = "upstream_unavailable"
    detail = "The source system is unavailable or throttling us; retry later."

    def __init__(self, detail: str | None = None, *, retry_after: float | None, **extra: Any):
        seconds = max(1, round(retry_after or 1))
        super().__init__(
            detail, headers={"Retry-After": str(seconds)}, retry_after=seconds, **extra
        )


class UpstreamFailed(AppError):
    status = 502
    code = "upstream_error"
    detail = "The source system refused or failed the request."


class IntegrationNotConfigured(AppError):
    status = 503
    code = "integration_not_configured"
    detail = "Your organisation has no connection to this source system."

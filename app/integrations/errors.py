"""Typed errors every integration client raises, by what the caller can do about them.

Each client maps its system's error shapes (Oracle's ``o:errorDetails`` or plain text, Yardi's
``<Messages>`` inside an HTTP 200 and SOAP faults, FCM's status codes) onto these kinds, so that
a module can tell "the task is gone" from "try again later" without knowing the wire format.
"""

from __future__ import annotations

from typing import ClassVar

import httpx

from app.integrations.transport.wire import CircuitOpenError, parse_retry_after


class IntegrationError(Exception):
    """A call to an external system failed.

    Attributes:
        integration: ``oracle_fusion``, ``yardi`` or ``fcm``.
        detail: the system's own message, trimmed (never credentials).
        status: the HTTP status, when there was a response.
        retry_after: seconds to wait before trying again, when the system said so.
    """

    kind: ClassVar[str] = "error"

    def __init__(
        self,
        detail: str,
        *,
        integration: str,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.detail = detail
        self.integration = integration
        self.status = status
        self.retry_after = retry_after
        super().__init__(f"{integration}: {detail}")


class NotFoundError(IntegrationError):
    """The resource does not exist, or this identity may not see it."""

    kind = "not_found"


class ConflictError(IntegrationError):
    """The resource changed under us (already decided, ETag mismatch)."""

    kind = "conflict"


class AlreadyDecidedError(ConflictError):
    """The task was already approved, rejected or withdrawn."""


class AuthError(IntegrationError):
    """The credentials were refused (401) or lack a privilege (403)."""

    kind = "auth"


class RateLimitedError(IntegrationError):
    """The system asked us to slow down; ``retry_after`` says for how long, when it said."""

    kind = "rate_limited"


class UnavailableError(IntegrationError):
    """The system is down, timing out, or our breaker for it is open. Retry later."""

    kind = "unavailable"


class BadRequestError(IntegrationError):
    """The system refused the request as invalid; retrying will not help."""

    kind = "bad_request"


class ActionNotAllowedError(BadRequestError):
    """The task does not offer this action (checked before calling)."""


class ProtocolError(IntegrationError):
    """The answer did not have the shape the contract promises."""

    kind = "protocol"


def for_status(
    status: int,
    detail: str,
    *,
    integration: str,
    retry_after: float | None = None,
    conflict: type[ConflictError] = ConflictError,
) -> IntegrationError:
    """Return the typed error for an HTTP error status."""
    cls: type[IntegrationError]
    if status in (401, 403):
        cls = AuthError
    elif status in (404, 410):
        cls = NotFoundError
    elif status in (409, 412):
        cls = conflict
    elif status == 429:
        cls = RateLimitedError
    elif status >= 500:
        cls = UnavailableError
    elif 400 <= status < 500:
        cls = BadRequestError
    else:
        cls = ProtocolError
        detail = f"unexpected status {status}: {detail}"
    keep_retry_after = cls in (RateLimitedError, UnavailableError)
    return cls(
        detail,
        integration=integration,
        status=status,
        retry_after=retry_after if keep_retry_after else None,
    )


def error_from_response(
    response: httpx.Response,
    detail: str,
    *,
    integration: str,
    conflict: type[ConflictError] = ConflictError,
) -> IntegrationError:
    """Return the typed error for a non-2xx answer, its ``Retry-After`` read the one way.

    Args:
        response: the answer (its status and its ``Retry-After`` header are read).
        detail: the system's own message, as its client extracted it.
        integration: ``oracle_fusion``, ``yardi``...
        conflict: the conflict class for 409 and 412 (Oracle's task calls: already decided).
    """
    return for_status(
        response.status_code,
        detail,
        integration=integration,
        retry_after=parse_retry_after(response.headers.get("Retry-After")),
        conflict=conflict,
    )


def error_from_transport(exc: httpx.TransportError, *, integration: str) -> UnavailableError:
    """Return the typed error for a call that got no answer: every client maps it this way.

    An open breaker says when to come back; a timeout and a refused or dropped connection
    name their kind.
    """
    if isinstance(exc, CircuitOpenError):
        return UnavailableError(
            "circuit open after repeated failures",
            integration=integration,
            retry_after=exc.retry_after,
        )
    if isinstance(exc, httpx.TimeoutException):
        return UnavailableError(f"timed out ({type(exc).__name__})", integration=integration)
    return UnavailableError(f"no answer ({type(exc).__name__})", integration=integration)

"""Errors are data: one :class:`AppError` base rendered as ``application/problem+json``.

Every problem body has ``type``, ``title``, ``status``, ``detail``, a stable machine ``code`` and
the request's ``correlation_id``. Clients never see a stack trace.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.core.context import get_correlation_id

logger = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


class AppError(Exception):
    """A domain error with an HTTP status and a stable machine code.

    Subclasses set ``status`` and ``code`` as class attributes; ``detail`` is the human message.
    """

    status: int = 400
    code: str = "bad_request"
    detail: str = "The request could not be processed."
    commit: bool = False
    """True when the error records something: the transaction it ends commits (instead of rolling
    back) before the error is answered, like the revocation of a stolen refresh token's family."""

    def __init__(
        self,
        detail: str | None = None,
        *,
        status: int | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        self.detail = detail or type(self).detail
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        self.headers = headers or {}
        self.extra = extra
        super().__init__(self.detail)


class TransientError(Exception):
    """A failure that passes: the same work is expected to succeed later (a source down,
    throttling us, or our breaker for it open).

    A durable listener that raises it (or a subclass) has its delivery retried: after
    ``retry_after`` seconds when set (the far side said when to come back), else after the
    listener's backoff. The relay logs it in one line, without a stack: it is expected, not a bug.

    Args:
        detail: what happened, kept in the delivery's error history.
        retry_after: seconds to wait before trying again, when known (negative counts as 0).
    """

    retry_after: float | None = None

    def __init__(self, detail: str = "", *, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.retry_after = None if retry_after is None else max(0.0, float(retry_after))


class NotFound(AppError):
    status = 404
    code = "not_found"
    detail = "The resource does not exist."


class Conflict(AppError):
    status = 409
    code = "conflict"
    detail = "The resource is in a conflicting state."


class Unauthorized(AppError):
    status = 401
    code = "unauthorized"
    detail = "Authentication is required."

    def __init__(self, detail: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(detail, **kwargs)


def retry_after_value(seconds: float | None) -> str:
    """Return a ``Retry-After`` header value: whole seconds, rounded up, at least 1.

    The one way every answer that says when to come back writes it: never sooner than asked.
    """
    return str(max(1, math.ceil(seconds or 0)))


class Forbidden(AppError):
    status = 403
    code = "forbidden"
    detail = "You may not do this."


class TooManyRequests(AppError):
    status = 429
    code = "too_many_requests"
    detail = "Too many requests; retry later."

    def __init__(self, detail: str | None = None, *, retry_after: int, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"Retry-After": retry_after_value(retry_after)})
        super().__init__(detail, retry_after=int(retry_after_value(retry_after)), **kwargs)


class UpstreamError(AppError):
    status = 502
    code = "upstream_error"
    detail = "An upstream system failed."


def problem(
    status: int,
    code: str,
    detail: str,
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """Render one problem+json response."""
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    body: dict[str, Any] = {
        "type": f"about:blank#{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        "correlation_id": get_correlation_id(),
        **extra,
    }
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
}


async def _app_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    return problem(exc.status, exc.code, exc.detail, headers=exc.headers, **exc.extra)


_BODY_PARSE_FAILED = "There was an error parsing the body"
MALFORMED_BODY = {"loc": ("body",), "msg": "The body is not valid JSON", "type": "json_invalid"}
"""A body that is not JSON (bad syntax, invalid UTF-8, nested too deep) is one 422."""


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and exc.detail == _BODY_PARSE_FAILED:
        # FastAPI answers invalid JSON with 422 but invalid UTF-8 or too-deep JSON with this
        # 400: a malformed body is answered one way, 422 at the location "body".
        return validation_problem([MALFORMED_BODY])
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    if exc.status_code == 404 and detail == "Not Found":
        detail = "No route matches this path."
    return problem(exc.status_code, code, detail, headers=dict(exc.headers or {}))


MAX_VALIDATION_ERRORS = 20
"""A 422 lists at most this many errors (``errors_total`` says how many there were)."""
_MAX_PART = 100
_MAX_MSG = 300


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[: limit - 1]}…"


def _jsonable_error(error: dict[str, Any]) -> dict[str, Any]:
    # The offending input is never echoed: it may be a password or a private key. A location
    # part may be a key the client sent, so it is clipped like the message.
    return {
        "loc": [p if isinstance(p, int) else _clip(str(p), _MAX_PART) for p in error["loc"]],
        "msg": _clip(str(error.get("msg", "")), _MAX_MSG),
        "type": error.get("type"),
    }


def validation_problem(raw_errors: Sequence[dict[str, Any]]) -> JSONResponse:
    """The 422 of invalid input: the first errors, each with its location, and their total."""
    errors = [_jsonable_error(e) for e in raw_errors[:MAX_VALIDATION_ERRORS]]
    fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in errors)
    more = len(raw_errors) - len(errors)
    detail = f"Invalid request: {fields}" + (f" and {more} more." if more else ".")
    return problem(422, "validation_error", detail, errors=errors, errors_total=len(raw_errors))


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return validation_problem(exc.errors())


def internal_error_response() -> JSONResponse:
    """The 500 body: a correlation id to quote, never a stack trace."""
    return problem(
        500,
        "internal_error",
        "An unexpected error occurred. Quote the correlation id when reporting it.",
    )


DATABASE_BUSY_RETRY_AFTER = 2
"""Seconds a client is told to wait when the database has no connection (or lock) free."""


def is_database_busy(exc: BaseException) -> bool:
    """Whether ``exc`` says the database is saturated, not broken.

    Every pooled connection stayed taken for the pool timeout, or SQLite's write lock stayed
    taken for the busy timeout.
    """
    if isinstance(exc, PoolTimeout):
        return True
    return isinstance(exc, OperationalError) and "database is locked" in str(exc.orig)


def database_busy_response() -> JSONResponse:
    """The 503 a saturated database answers: retry shortly, nothing was changed."""
    return problem(
        503,
        "database_busy",
        "The database is busy; nothing was changed. Retry shortly.",
        headers={"Retry-After": str(DATABASE_BUSY_RETRY_AFTER)},
    )


async def _database_error(_request: Request, exc: Exception) -> JSONResponse:
    if is_database_busy(exc):
        logger.warning("database busy: %s", type(exc).__name__)
        return database_busy_response()
    raise exc


def install_error_handlers(app: FastAPI) -> None:
    """Render domain, HTTP and validation errors of ``app`` as problem+json.

    A saturated database (no pooled connection free, or SQLite's lock held too long) is 503
    ``database_busy`` with ``Retry-After``. Unexpected exceptions are answered by
    :class:`~app.core.middleware.CorrelationIdMiddleware`.
    """
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(PoolTimeout, _database_error)
    app.add_exception_handler(OperationalError, _database_error)

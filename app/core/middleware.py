"""ASGI middleware: correlation ids and a last-resort problem+json for unhandled errors."""

from __future__ import annotations

import logging
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.context import correlation_id_var, new_correlation_id
from app.core.errors import database_busy_response, internal_error_response, is_database_busy

logger = logging.getLogger(__name__)

HEADER = "x-request-id"
_VALID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


class CorrelationIdMiddleware:
    """Honour an incoming ``X-Request-ID`` (or create one) and return it on every response.

    The id is set in a contextvar for the whole request, so every log line and every event
    emitted while handling the request carries it. An exception that escapes the app is logged
    with its stack and answered with a 500 problem that quotes the id.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, HEADER)
        correlation_id = incoming if incoming and _VALID.match(incoming) else new_correlation_id()
        token = correlation_id_var.set(correlation_id)
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = [h for h in message.get("headers", []) if h[0].lower() != b"x-request-id"]
                headers.append((b"x-request-id", correlation_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            if is_database_busy(exc) and not started:
                logger.warning("database busy on %s %s", scope.get("method"), scope.get("path"))
                await database_busy_response()(scope, receive, send_with_id)
                return
            logger.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            await internal_error_response()(scope, receive, send_with_id)
        finally:
            correlation_id_var.reset(token)


def _header(scope: Scope, name: str) -> str | None:
    raw = name.encode()
    for key, value in scope.get("headers", []):
        if key.lower() == raw:
            decoded: str = value.decode("latin-1")
            return decoded
    return None

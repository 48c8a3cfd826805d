"""What every integration client shares with the resilience layer that wraps its HTTP client.

Clients wrap an injected ``httpx.AsyncClient``. Whatever transport that client carries (in the
application, :mod:`app.integrations.transport`: retries, a breaker per tenant, a concurrency
limit) reads two request extensions the clients set: which tenant a call belongs to, and whether
it is safe to send twice. A call that carries an ``Idempotency-Key`` header counts as safe too.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

TENANT = "workflow_hub.tenant"
"""Request extension: the organisation a call is made for (the breaker's partition)."""
IDEMPOTENT = "workflow_hub.idempotent"
"""Request extension: ``True`` when the call may be sent again (a read sent as POST, say)."""
OPERATION = "workflow_hub.operation"
"""Request extension: what the call does (``list_tasks``), a fixed name: the metrics' label."""
IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
REQUEST_ID_HEADER = "X-Request-ID"
"""Names one call, the same on each of its retries, so the system's logs can tie them together."""


def extensions(
    *, tenant: str | None, idempotent: bool | None = None, operation: str | None = None
) -> dict[str, Any]:
    """Return fresh request extensions (httpx adds to the dict it is given).

    ``operation`` names the call in the metrics; it must come from the code (a constant),
    never from data, since each value becomes a label.
    """
    out: dict[str, Any] = {}
    if tenant is not None:
        out[TENANT] = tenant
    if idempotent is not None:
        out[IDEMPOTENT] = idempotent
    if operation is not None:
        out[OPERATION] = operation
    return out


MAX_RETRY_AFTER_SECONDS = 86_400.0
"""The longest wait a ``Retry-After`` is taken to ask for: a day (a larger one is capped)."""


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Return the seconds a ``Retry-After`` header asks for (delta-seconds or an HTTP date).

    The answer is between 0 and :data:`MAX_RETRY_AFTER_SECONDS`, so a hostile or broken header
    never becomes an infinite or overflowing wait.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if value.isascii() and value.isdigit():
        return min(float(value), MAX_RETRY_AFTER_SECONDS)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(0.0, seconds), MAX_RETRY_AFTER_SECONDS)


class CircuitOpenError(httpx.TransportError):
    """The integration's breaker for this tenant is open: the call was not sent."""

    def __init__(self, message: str, *, retry_after: float, request: httpx.Request) -> None:
        super().__init__(message, request=request)
        self.retry_after = retry_after

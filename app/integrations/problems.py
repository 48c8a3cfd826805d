"""How an integration error that no module mapped reaches the client: a problem naming the system.

Our own credentials being refused, or a request the system rejects, is a gateway failure (502),
not the caller's; a system that is down or throttling us is 503 with ``Retry-After``.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request, Response

from app.core.errors import problem, retry_after_value
from app.integrations.errors import IntegrationError

logger = logging.getLogger(__name__)

_UPSTREAM_STATUS = {
    "not_found": 404,
    "conflict": 409,
    "rate_limited": 503,
    "unavailable": 503,
}


_UPSTREAM_DETAIL = {
    "not_found": "The external system does not know this resource.",
    "conflict": "The resource changed at the external system (for example, already decided).",
    "rate_limited": "The external system is throttling us; retry later.",
    "unavailable": "The external system is unavailable; retry later.",
    "auth": "The external system refused our credentials.",
}


async def _integration_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, IntegrationError)
    status = _UPSTREAM_STATUS.get(exc.kind, 502)
    headers = {"Retry-After": retry_after_value(exc.retry_after)} if exc.retry_after else None
    # The system's own message stays in the log: it may describe the tenant's internals.
    logger.warning("unmapped %s error reached the client: %s", exc.integration, exc.detail)
    return problem(
        status,
        f"upstream_{exc.kind}",
        _UPSTREAM_DETAIL.get(exc.kind, "The external system failed the request."),
        headers=headers,
        integration=exc.integration,
    )


def install_integration_error_handler(app: FastAPI) -> None:
    """Render an integration error that no module mapped as a problem naming the system."""
    app.add_exception_handler(IntegrationError, _integration_error)

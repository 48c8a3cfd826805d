"""Resilience shared by every integration: timeouts, retries, breakers and limits.

One ``httpx.AsyncClient`` per integration, built here in the lifespan, carries a
:class:`ResilientTransport`; the clients in ``app/integrations`` stay plain httpx code.
"""

from __future__ import annotations

import httpx

from app.core.settings import HttpSettings
from app.integrations.transport.breaker import (
    BreakerOpen,
    BreakerRegistry,
    BreakerState,
    CircuitBreaker,
)
from app.integrations.transport.resilient import (
    FailureCheck,
    ResiliencePolicy,
    ResilientTransport,
    Sleep,
    is_idempotent,
    server_error,
)

__all__ = [
    "BreakerOpen",
    "BreakerRegistry",
    "BreakerState",
    "CircuitBreaker",
    "FailureCheck",
    "ResiliencePolicy",
    "ResilientTransport",
    "Sleep",
    "build_client",
    "is_idempotent",
    "policy_from_settings",
    "server_error",
]


def policy_from_settings(
    http: HttpSettings,
    *,
    max_concurrency: int | None = None,
    rate_limit_per_second: float | None = None,
    read_timeout_seconds: float | None = None,
) -> ResiliencePolicy:
    """Return the policy of ``HTTP_*`` defaults with an integration's overrides applied.

    Args:
        http: the process-wide defaults.
        max_concurrency: the integration's own limit, if it sets one.
        rate_limit_per_second: the integration's own rate, if it sets one.
        read_timeout_seconds: the integration's own read timeout, if it sets one.

    Returns:
        The policy for that integration's client.
    """
    return ResiliencePolicy(
        timeout=httpx.Timeout(
            connect=http.connect_timeout_seconds,
            read=read_timeout_seconds or http.read_timeout_seconds,
            write=http.write_timeout_seconds,
            pool=http.pool_timeout_seconds,
        ),
        attempts=http.retry_attempts,
        backoff_seconds=http.retry_backoff_seconds,
        backoff_max_seconds=http.retry_backoff_max_seconds,
        retry_after_max_seconds=http.retry_after_max_seconds,
        max_concurrency=max_concurrency or http.max_concurrency,
        rate_limit_per_second=(
            http.rate_limit_per_second if rate_limit_per_second is None else rate_limit_per_second
        ),
    )


def build_client(
    integration: str,
    policy: ResiliencePolicy,
    breakers: BreakerRegistry,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    sleep: Sleep | None = None,
    headers: dict[str, str] | None = None,
    is_failure: FailureCheck = server_error,
) -> httpx.AsyncClient:
    """Create the one HTTP client of ``integration``; close it with ``aclose()``.

    Args:
        integration: its name, which keys its breakers and metrics.
        policy: timeouts, retries and limits.
        breakers: the process's breakers.
        transport: the transport under the resilience layer (tests pass an ASGI transport);
            by default a connection pool sized to the concurrency limit.
        sleep: how retries wait (tests pass a recorder).
        headers: sent with every call (a user agent, say).
        is_failure: which answers count against the breaker (by default any 5xx; Yardi's
            ``soap:Client`` faults arrive as 500 but mean our request was wrong, not Yardi).

    Returns:
        A client with no base URL: each organisation's connection names its own.
    """
    inner = transport or httpx.AsyncHTTPTransport(
        limits=httpx.Limits(
            max_connections=policy.max_concurrency,
            max_keepalive_connections=policy.max_concurrency,
        ),
        retries=0,
    )
    resilient = ResilientTransport(
        inner,
        integration=integration,
        policy=policy,
        breakers=breakers,
        is_failure=is_failure,
        **({"sleep": sleep} if sleep is not None else {}),
    )
    return httpx.AsyncClient(
        transport=resilient,
        timeout=policy.timeout,
        headers=headers,
        follow_redirects=False,
    )

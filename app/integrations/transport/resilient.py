"""An httpx transport that adds retries, a breaker per tenant and limits to any inner transport.

Each integration's one ``httpx.AsyncClient`` is built on it (see :func:`build_client`), so the
clients stay plain httpx code. What is retried:

- a call that never reached the server (connection refused, connect or pool timeout), always;
- an idempotent call (GET, HEAD, OPTIONS, a call marked idempotent, or one carrying an
  ``Idempotency-Key``) on a read timeout, a dropped connection, or a 429, 502, 503 or 504;
- never a non-idempotent call that may have reached the server: approving a task twice is worse
  than reporting a failure.

The wait is the answer's ``Retry-After`` when it gives one (a longer one than
``retry_after_max_seconds`` is handed back to the caller at once), else exponential backoff with
full jitter.

Every call carries an ``X-Request-ID`` (kept when the caller set one), the same on each of its
attempts: the system's logs can tie the retries of one call together, and the sandbox checks
with it that a retry came no sooner than the ``Retry-After`` it was given.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx
from aiolimiter import AsyncLimiter
from tenacity import AsyncRetrying, RetryCallState, stop_after_attempt, wait_random_exponential

from app.integrations.metrics import ATTEMPTS, CALL_DURATION, CALLS
from app.integrations.transport.breaker import BreakerOpen, BreakerRegistry
from app.integrations.transport.wire import (
    IDEMPOTENCY_KEY_HEADER,
    IDEMPOTENT,
    OPERATION,
    REQUEST_ID_HEADER,
    TENANT,
    CircuitOpenError,
    parse_retry_after,
)

logger = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
FailureCheck = Callable[[httpx.Response], Awaitable[bool]]
"""Whether an answer counts against the breaker (the system is failing, not the request)."""


async def server_error(response: httpx.Response) -> bool:
    """The default failure check: any 5xx answer."""
    return response.status_code >= 500


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True)
class ResiliencePolicy:
    """How one integration's calls are timed out, retried, broken and limited."""

    timeout: httpx.Timeout = field(default_factory=lambda: httpx.Timeout(30.0, connect=5.0))
    attempts: int = 3
    backoff_seconds: float = 0.5
    backoff_max_seconds: float = 10.0
    retry_after_max_seconds: float = 30.0
    retry_statuses: frozenset[int] = frozenset({429, 502, 503, 504})
    max_concurrency: int = 20
    rate_limit_per_second: float = 0.0


def is_idempotent(request: httpx.Request) -> bool:
    """Return whether ``request`` may be sent again without doing its work twice."""
    marked = request.extensions.get(IDEMPOTENT)
    if marked is not None:
        return bool(marked)
    return request.method in SAFE_METHODS or IDEMPOTENCY_KEY_HEADER in request.headers


class ResilientTransport(httpx.AsyncBaseTransport):
    """Wrap ``inner`` with the retries, breakers and limits of one integration."""

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        *,
        integration: str,
        policy: ResiliencePolicy,
        breakers: BreakerRegistry,
        sleep: Sleep = asyncio.sleep,
        is_failure: FailureCheck = server_error,
    ) -> None:
        self.inner = inner
        self.is_failure = is_failure
        self.integration = integration
        self.policy = policy
        self.breakers = breakers
        self.sleep = sleep
        self._slots = asyncio.Semaphore(policy.max_concurrency)
        self._rate = _limiter(policy.rate_limit_per_second)
        self._backoff = wait_random_exponential(
            multiplier=policy.backoff_seconds, max=policy.backoff_max_seconds
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        idempotent = is_idempotent(request)
        if REQUEST_ID_HEADER not in request.headers:
            request.headers[REQUEST_ID_HEADER] = uuid.uuid4().hex
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.policy.attempts),
            retry=lambda state: self._should_retry(state, idempotent),
            wait=self._wait,
            sleep=self.sleep,
            before_sleep=self._discard,
            retry_error_callback=lambda state: state.outcome.result(),  # type: ignore[union-attr]
        )
        operation = str(request.extensions.get(OPERATION) or "unnamed")
        started = time.perf_counter()
        outcome = "error"
        try:
            response: httpx.Response = await retrying(self._attempt, request)
            outcome = f"{response.status_code // 100}xx"
            return response
        except CircuitOpenError:
            outcome = "circuit_open"
            raise
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        finally:
            CALLS.labels(self.integration, operation, outcome).inc()
            CALL_DURATION.labels(self.integration, operation).observe(time.perf_counter() - started)

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def _attempt(self, request: httpx.Request) -> httpx.Response:
        tenant = request.extensions.get(TENANT)
        breaker = self.breakers.get(self.integration, tenant)
        try:
            breaker.before_call()
        except BreakerOpen as exc:
            ATTEMPTS.labels(self.integration, "circuit_open").inc()
            raise CircuitOpenError(
                f"{self.integration} circuit open for {tenant or 'the process'}",
                retry_after=exc.retry_after,
                request=request,
            ) from exc
        try:
            async with self._slots:
                if self._rate is not None:
                    await self._rate.acquire()
                response = await self.inner.handle_async_request(request)
        except httpx.TransportError as exc:
            breaker.record_failure(f"{type(exc).__name__} on {_call(request)}")
            ATTEMPTS.labels(self.integration, "error").inc()
            raise
        except BaseException:
            breaker.record_neutral()
            raise
        try:
            failed = await self.is_failure(response)
        except BaseException:
            await response.aclose()
            breaker.record_neutral()
            raise
        if failed:
            breaker.record_failure(f"HTTP {response.status_code} on {_call(request)}")
        else:
            breaker.record_success()
        ATTEMPTS.labels(self.integration, f"{response.status_code // 100}xx").inc()
        return response

    def _should_retry(self, state: RetryCallState, idempotent: bool) -> bool:
        outcome = state.outcome
        if outcome is None:
            return False
        if outcome.failed:
            exc = outcome.exception()
            if isinstance(exc, CircuitOpenError):
                return False
            if isinstance(exc, NEVER_SENT):
                return True
            return idempotent and isinstance(exc, httpx.TransportError)
        response: httpx.Response = outcome.result()
        if not idempotent or response.status_code not in self.policy.retry_statuses:
            return False
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return retry_after is None or retry_after <= self.policy.retry_after_max_seconds

    def _wait(self, state: RetryCallState) -> float:
        outcome = state.outcome
        if outcome is not None and not outcome.failed:
            response: httpx.Response = outcome.result()
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if retry_after is not None:
                return retry_after
        return float(self._backoff(state))

    async def _discard(self, state: RetryCallState) -> None:
        ATTEMPTS.labels(self.integration, "retry").inc()
        outcome = state.outcome
        reason: object
        if outcome is not None and not outcome.failed:
            response: httpx.Response = outcome.result()
            reason = response.status_code
            await response.aclose()
        else:
            reason = type(outcome.exception()).__name__ if outcome is not None else "?"
        logger.info(
            "%s: attempt %d ended with %s; retrying in %.2fs",
            self.integration,
            state.attempt_number,
            reason,
            state.upcoming_sleep,
        )


def _limiter(per_second: float) -> AsyncLimiter | None:
    """A limiter of ``per_second`` calls (None when 0); below 1, one call per 1/rate seconds."""
    if per_second <= 0:
        return None
    if per_second < 1:
        return AsyncLimiter(1, 1.0 / per_second)
    return AsyncLimiter(per_second, 1.0)


def _call(request: httpx.Request) -> str:
    """The method and path of a call (never its query string or body, which may hold data)."""
    return f"{request.method} {request.url.path}"

"""A circuit breaker per integration and organisation.

Closed, it counts consecutive failures; at the threshold it opens and rejects calls for
``reset_seconds``. Then it is half-open: one probe goes through, and its outcome closes the breaker
or opens it again. One tenant's broken Oracle pod never stops another tenant's calls.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from app.integrations import metrics

logger = logging.getLogger(__name__)

Clock = Callable[[], float]
RECENT_FAILURES = 10
"""How many of its latest failures a breaker keeps, for the admin console."""


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class BreakerOpen(Exception):
    """The breaker rejected a call; ``retry_after`` is when it will let a probe through."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"circuit open; retry in {retry_after:.1f}s")
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Failure:
    """One failed call: when (the wall clock's epoch seconds) and what (never a secret)."""

    at: float
    reason: str


@dataclass
class CircuitBreaker:
    """One breaker. Not thread-safe: it lives on one event loop."""

    name: str
    failure_threshold: int
    reset_seconds: float
    clock: Clock = time.monotonic
    state: BreakerState = BreakerState.CLOSED
    failures: int = 0
    opened_at: float = 0.0
    recent: deque[Failure] = field(
        default_factory=lambda: deque(maxlen=RECENT_FAILURES), repr=False
    )
    """The latest failures, oldest first (kept across closing: they are history)."""
    _probing: bool = field(default=False, repr=False)

    def before_call(self) -> None:
        """Let the call through or raise :class:`BreakerOpen` (one probe when half-open)."""
        if self.state is BreakerState.OPEN:
            remaining = self.opened_at + self.reset_seconds - self.clock()
            if remaining > 0:
                raise BreakerOpen(remaining)
            self.state = BreakerState.HALF_OPEN
            self._probing = False
        if self.state is BreakerState.HALF_OPEN:
            if self._probing:
                raise BreakerOpen(self.reset_seconds)
            self._probing = True

    @property
    def integration(self) -> str:
        return self.name.split(":", 1)[0]

    def current_state(self) -> BreakerState:
        """Return the state the next call will find (an open breaker past its reset is
        half-open), without changing it."""
        if self.state is BreakerState.OPEN and self.clock() >= self.opened_at + self.reset_seconds:
            return BreakerState.HALF_OPEN
        return self.state

    def record_success(self) -> None:
        if self.state is not BreakerState.CLOSED:
            logger.info("breaker %s closed", self.name)
            metrics.BREAKER_CLOSED.labels(self.integration).inc()
        self.state = BreakerState.CLOSED
        self.failures = 0
        self._probing = False

    def record_failure(self, reason: str = "failed") -> None:
        self.recent.append(Failure(time.time(), reason))
        self.failures += 1
        if self.state is BreakerState.HALF_OPEN or self.failures >= self.failure_threshold:
            if self.state is not BreakerState.OPEN:
                logger.warning("breaker %s opened after %d failures", self.name, self.failures)
                metrics.BREAKER_OPENED.labels(self.integration).inc()
            self.state = BreakerState.OPEN
            self.opened_at = self.clock()
            self._probing = False

    def record_neutral(self) -> None:
        """The call ended without telling us anything about health (cancelled, say)."""
        self._probing = False


class BreakerRegistry:
    """Every breaker of a process, keyed by integration and tenant, created on first use."""

    def __init__(
        self, *, failure_threshold: int, reset_seconds: float, clock: Clock = time.monotonic
    ) -> None:
        self.failure_threshold = failure_threshold
        self.reset_seconds = reset_seconds
        self.clock = clock
        self._breakers: dict[tuple[str, str], CircuitBreaker] = {}
        metrics.BREAKERS.track(self)

    def close(self) -> None:
        """Stop exporting these breakers: the integrations that used them are closed (the gauge
        must not report a closed app's open breaker until the garbage collector finds it)."""
        metrics.BREAKERS.untrack(self)

    def get(self, integration: str, tenant: str | None) -> CircuitBreaker:
        """Return the breaker of ``integration`` for ``tenant`` (``-`` when there is none)."""
        key = (integration, tenant or "-")
        breaker = self._breakers.get(key)
        if breaker is None:
            breaker = CircuitBreaker(
                name=f"{integration}:{key[1]}",
                failure_threshold=self.failure_threshold,
                reset_seconds=self.reset_seconds,
                clock=self.clock,
            )
            self._breakers[key] = breaker
        return breaker

    def recent_failures(self, integration: str, tenant: str | None) -> list[Failure]:
        """Return the latest failures of ``integration`` for ``tenant``, newest first."""
        breaker = self._breakers.get((integration, tenant or "-"))
        return list(reversed(breaker.recent)) if breaker is not None else []

    def current_states(self) -> list[tuple[str, int]]:
        """Return each breaker's integration and gauge value (0 closed, 1 half-open, 2 open)."""
        return [
            (integration, metrics.BREAKER_STATE_VALUES[breaker.current_state().value])
            for (integration, _), breaker in list(self._breakers.items())
        ]

    def states(self) -> dict[tuple[str, str], BreakerState]:
        """Return the state of every breaker, for health pages and tests."""
        return {key: breaker.state for key, breaker in self._breakers.items()}

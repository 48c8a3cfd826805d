"""Every metric series of the integrations (Oracle Fusion, Yardi), named in one place.

Labels are bounded by the code: the integration (``oracle_fusion``, ``yardi``), the operation a
client names for each call (``list_tasks``, ``GetPendingApprovals``...; ``unnamed`` when it
named none), and an outcome (a status class, ``error`` or ``circuit_open``). Never a tenant, a
URL or a path, which carry ids.

Breakers are kept per integration *and* organisation, in memory; the state gauge reports the
worst breaker of each integration (0 closed, 1 half-open, 2 open), read from the process's
breaker registries when ``/metrics`` is scraped (a loop over a dict, no I/O), and the count of
organisations whose breaker is open. An open breaker whose reset time has passed reports
half-open, as the next call will find it.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from app.integrations.transport.breaker import BreakerRegistry

CALLS = Counter(
    "workflow_hub_integration_calls_total",
    "Integration calls (retries included in one call), by integration, operation and outcome "
    "(2xx, 3xx, 4xx, 5xx, error, circuit_open, cancelled).",
    ["integration", "operation", "outcome"],
)
CALL_DURATION = Histogram(
    "workflow_hub_integration_call_duration_seconds",
    "Time one integration call took, its retries and their waits included.",
    ["integration", "operation"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
ATTEMPTS = Counter(
    "workflow_hub_integration_attempts_total",
    "Integration HTTP attempts, by integration and outcome (a status class, error, "
    "circuit_open, or retry when another attempt follows).",
    ["integration", "outcome"],
)

BREAKER_OPENED = Counter(
    "workflow_hub_integration_breaker_opened_total",
    "Times an integration's breaker opened for an organisation.",
    ["integration"],
)
BREAKER_CLOSED = Counter(
    "workflow_hub_integration_breaker_closed_total",
    "Times an integration's open or half-open breaker closed again (a probe succeeded).",
    ["integration"],
)

BREAKER_STATE_VALUES = {"closed": 0, "half_open": 1, "open": 2}


class BreakerCollector(Collector):
    """Reports the breakers of every live registry of the process (see the module docstring)."""

    def __init__(self) -> None:
        self._registries: weakref.WeakSet[BreakerRegistry] = weakref.WeakSet()

    def track(self, registry: BreakerRegistry) -> None:
        """Report ``registry``'s breakers until it is garbage-collected."""
        self._registries.add(registry)

    def untrack(self, registry: BreakerRegistry) -> None:
        """Stop reporting ``registry``'s breakers (its integrations closed)."""
        self._registries.discard(registry)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        state = GaugeMetricFamily(
            "workflow_hub_integration_breaker_state",
            "The worst breaker of each integration: 0 closed, 1 half-open, 2 open.",
            labels=["integration"],
        )
        opened = GaugeMetricFamily(
            "workflow_hub_integration_breakers_open",
            "Organisations whose breaker of this integration is open now.",
            labels=["integration"],
        )
        worst: dict[str, int] = {}
        open_count: dict[str, int] = {}
        for registry in list(self._registries):
            for integration, value in registry.current_states():
                worst[integration] = max(worst.get(integration, 0), value)
                open_count[integration] = open_count.get(integration, 0) + (value == 2)
        for integration in sorted(worst):
            state.add_metric([integration], worst[integration])
            opened.add_metric([integration], open_count[integration])
        yield state
        yield opened

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())


BREAKERS = BreakerCollector()
REGISTRY.register(BREAKERS)

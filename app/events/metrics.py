"""Every metric series of the emitter and its outbox, named in one place.

Add a series here, next to its siblings, rather than in the file that counts it: operators read
this file to learn what the event pipeline reports (``GET /metrics``).
"""

from __future__ import annotations

from prometheus_client import Counter

EVENTS_EMITTED = Counter(
    "workflow_hub_events_emitted_total", "Typed events emitted, by name.", ["event"]
)
"""One per typed emit, before routing (an event nobody listens to is counted too)."""

LISTENER_FAILURES = Counter(
    "workflow_hub_event_listener_failures_total",
    "Listener failures, by event and listener.",
    ["event", "listener"],
)
"""Inline and background listeners that raised (durable attempts count below)."""

DURABLE_DELIVERIES = Counter(
    "workflow_hub_durable_deliveries_total",
    "Durable delivery attempts, by listener and outcome (done, retry, dead, deferred, lost).",
    ["listener", "outcome"],
)
"""One per attempt the relay finished: ``lost`` when another relay owned it by then."""

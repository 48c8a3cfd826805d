"""Every metric series of the emitter and its outbox, named in one place.

Add a series here, next to its siblings, rather than in the file that counts it: operators read
this file to learn what the event pipeline reports (``GET /metrics``; docs/operations.md lists
every series and the alerts built on them).

Labels are bounded: an event name, a listener id, an outcome or a status, all fixed by the code.
Never a user, an organisation or an event id.

**The outbox gauges are refreshed by the relay, not computed per scrape.** The table of
deliveries grows with history (done rows are kept for ``EVENTS_RETENTION_DAYS``), so a scrape
that counted it would cost a scan every 15 seconds per scraper. Instead each running relay
refreshes them on its heartbeat (``EVENTS_RELAY_HEARTBEAT_SECONDS``) with two queries that read
indexes of open work only: the counts of pending, held, running and dead deliveries (the
``status``/``available_at`` index: its cost grows with the backlog, never with the done
history), and the oldest due delivery (the first entry of the claim's partial index: one
probe). A scrape then reads memory. ``workflow_hub_outbox_stats_refreshed_timestamp_seconds``
says when they were last refreshed, so a stalled relay shows as stale figures, not as calm.
They are database-wide figures: every relay process exports the same values (aggregate them
with ``max``, never ``sum``).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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

DURABLE_DELIVERY_DURATION = Histogram(
    "workflow_hub_durable_delivery_duration_seconds",
    "Time one durable delivery attempt took (listener and completion), by listener.",
    ["listener"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)

RELAY_CLAIM_LAG = Histogram(
    "workflow_hub_relay_claim_lag_seconds",
    "Time from a delivery being due (its available_at) to a relay claiming it.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0),
)

OUTBOX_DELIVERIES = Gauge(
    "workflow_hub_outbox_deliveries",
    "Open durable deliveries by status: pending (due or waiting for a retry), held (pending "
    "behind a dead letter of its key), running, dead (dead letters). Refreshed by the relay.",
    ["status"],
)
OUTBOX_STATUSES = ("pending", "held", "running", "dead")
for _status in OUTBOX_STATUSES:  # every status is exported from the start, at 0
    OUTBOX_DELIVERIES.labels(_status)

OUTBOX_OLDEST_DUE_AGE = Gauge(
    "workflow_hub_outbox_oldest_due_age_seconds",
    "How long the oldest due, unclaimed delivery has been due (0 when none). Refreshed by the "
    "relay.",
)

OUTBOX_STATS_REFRESHED = Gauge(
    "workflow_hub_outbox_stats_refreshed_timestamp_seconds",
    "When a relay of this process last refreshed the outbox gauges (Unix time; 0: never).",
)

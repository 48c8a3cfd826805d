"""Durable delivery: the transactional outbox, its relay, retries, dead letters and replay.

- ``sink``: stages an event and one delivery per durable listener in the emitting transaction.
- ``relay``: claims due deliveries (leases, heartbeats) and runs the listeners; its settings.
- ``listen_notify``: PostgreSQL LISTEN/NOTIFY, which wakes idle relays.
- ``repository``: all of the outbox's SQL. ``service``: list, inspect, retry, discard, replay,
  prune (the admin API and the CLI call it).
- ``errors``: ``Retry``, ``RetryAfter`` and ``DoNotRetry``, raised by listeners to steer their
  retries (``app.events.retry.RetryPolicy`` decides the rest), and ``Defer``, which moves a
  delivery that is not due yet without counting an attempt.
- ``context``: ``current_delivery()``, with the idempotency key a listener passes on.
"""

from app.events.outbox.context import DeliveryContext, current_delivery
from app.events.outbox.errors import Defer, DoNotRetry, PayloadInvalid, Retry, RetryAfter
from app.events.outbox.models import DeliveryStatus, OutboxDelivery, OutboxEvent
from app.events.outbox.relay import Relay, RelayConfig
from app.events.outbox.runtime import install_outbox, start_relay
from app.events.outbox.service import prune_history
from app.events.outbox.sink import OutboxSink

__all__ = [
    "Defer",
    "DeliveryContext",
    "DeliveryStatus",
    "DoNotRetry",
    "OutboxDelivery",
    "OutboxEvent",
    "OutboxSink",
    "PayloadInvalid",
    "Relay",
    "RelayConfig",
    "Retry",
    "RetryAfter",
    "current_delivery",
    "install_outbox",
    "prune_history",
    "start_relay",
]

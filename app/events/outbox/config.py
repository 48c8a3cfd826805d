"""How a relay claims and runs deliveries: the ``EVENTS_RELAY_*`` settings, as one value."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from app.core.settings import EventsSettings


@dataclass(frozen=True, slots=True)
class RelayConfig:
    """How a relay claims and runs deliveries (``EVENTS_RELAY_*`` settings).

    Attributes:
        concurrency: deliveries run at once.
        batch_size: deliveries claimed ahead of the running ones (one claim serves many).
        lease_seconds: how long a claim reserves a delivery; heartbeats extend it.
        heartbeat_seconds: how often leases are extended and expired ones rescued.
        poll_min_seconds: the first idle poll interval (doubling while idle).
        poll_max_seconds: the longest idle poll interval.
        shutdown_timeout_seconds: how long running deliveries may finish on stop.
        retention: how long finished history is kept.
        prune_interval_seconds: how often to prune (0: never).
        listen: wake on PostgreSQL NOTIFY.
    """

    concurrency: int = 8
    batch_size: int = 16
    lease_seconds: float = 60.0
    heartbeat_seconds: float = 15.0
    poll_min_seconds: float = 0.2
    poll_max_seconds: float = 5.0
    shutdown_timeout_seconds: float = 25.0
    retention: timedelta = timedelta(days=7)
    prune_interval_seconds: float = 3600.0
    listen: bool = True

    @classmethod
    def from_settings(cls, settings: EventsSettings) -> RelayConfig:
        """Read the ``EVENTS_`` settings."""
        return cls(
            concurrency=settings.relay_concurrency,
            batch_size=settings.relay_batch_size,
            lease_seconds=settings.relay_lease_seconds,
            heartbeat_seconds=settings.relay_heartbeat_seconds,
            poll_min_seconds=settings.relay_poll_min_seconds,
            poll_max_seconds=settings.relay_poll_max_seconds,
            shutdown_timeout_seconds=settings.relay_shutdown_timeout_seconds,
            retention=timedelta(days=settings.retention_days),
            prune_interval_seconds=settings.prune_interval_seconds,
        )

"""Test kit: capture published events, wait for background work, run durable deliveries.

Each app instance has its own emitter (``app.state.emitter``), so listeners never leak from one
test into another. ``await emitter.drain()`` waits for background listeners, and
``await run_pending(emitter)`` runs the durable deliveries waiting in the outbox, synchronously.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from app.core.db import Database, get_database, utcnow
from app.events.app_emitter import AppEmitter
from app.events.base import Envelope, Event, current_envelope
from app.events.emitter import EventEmitter
from app.events.outbox.relay import Relay, RelayConfig

E = TypeVar("E", bound=Event)


@dataclass(frozen=True, slots=True)
class Published:
    """One captured emission."""

    name: str
    args: tuple[Any, ...]
    envelope: Envelope | None

    @property
    def event(self) -> Any:
        """The typed event (the first argument)."""
        return self.args[0] if self.args else None


@dataclass
class Capture:
    """Every emission seen on an emitter while capturing, in order."""

    published: list[Published] = field(default_factory=list)

    def names(self) -> list[str]:
        """Return the emitted names, in order."""
        return [p.name for p in self.published]

    def of(self, event_type: type[E]) -> list[E]:
        """Return the captured events of one class, in order."""
        return [p.event for p in self.published if isinstance(p.event, event_type)]

    def one(self, event_type: type[E]) -> E:
        """Return the single captured event of one class; fail when there are 0 or several."""
        found = self.of(event_type)
        assert len(found) == 1, f"expected one {event_type.__name__}, got {len(found)}"
        return found[0]

    def envelope_of(self, event: Event) -> Envelope | None:
        """Return the envelope the captured ``event`` was emitted with."""
        for published in self.published:
            if published.event is event:
                return published.envelope
        return None


@contextmanager
def capture_events(emitter: EventEmitter) -> Iterator[Capture]:
    """Record every emission on ``emitter`` inside the block (a catch-all listener)."""
    capture = Capture()

    def record(name: str, *args: Any) -> None:
        capture.published.append(Published(name, args, current_envelope()))

    subscription = emitter.on_any(record, prepend=True)
    try:
        yield capture
    finally:
        subscription.off()


async def run_pending(
    emitter: AppEmitter,
    database: Database | None = None,
    *,
    clock: Callable[[], datetime] | None = None,
    rng: random.Random | None = None,
) -> int:
    """Run every due durable delivery of ``emitter`` now, to completion, and return how many.

    It repeats until nothing is due, so deliveries emitted by durable listeners run as well.
    Retries that are not due yet stay pending: pass a ``clock`` that has moved on to run them.

    Args:
        emitter: the emitter whose durable listeners run.
        database: the outbox's database (the process database by default).
        clock: the current time, for tests of backoff and leases.
        rng: the jitter's random source.

    Returns:
        The number of delivery attempts made.
    """
    relay = Relay(
        emitter,
        database or get_database(),
        RelayConfig(concurrency=8, listen=False),
        clock=clock or utcnow,
        rng=rng,
    )
    return await relay.run_until_idle()

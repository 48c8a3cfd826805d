"""The outbox writer: durable deliveries staged in the emitting transaction, written at commit.

``emit()`` is synchronous, so :meth:`OutboxSink.stage` only records the event in the session's
transaction buffer (``app.core.db.TransactionBuffer``, the one after-commit hooks use too). A
``before_commit`` hook writes everything staged on that session in one statement on PostgreSQL
(events, deliveries and a ``pg_notify`` that wakes idle relays when the transaction commits), or
in a few executemany statements on SQLite. The rows therefore commit or roll back with the
business change; a savepoint that rolls back drops what was staged inside it. Rows are written
at commit, so a query earlier in the same transaction does not see them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import event as sa_event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from app.core.db import Database, TransactionBuffer, after_commit, get_database, utcnow
from app.events.base import Envelope, Event
from app.events.outbox import repository
from app.events.outbox.repository import NewEvent
from app.events.subscription import Subscription

logger = logging.getLogger("app.events.outbox")

Clock = Callable[[], datetime]


class _Staged(NamedTuple):
    sink: OutboxSink
    event: NewEvent


_staged: TransactionBuffer[_Staged] = TransactionBuffer("outbox.staged")


class OutboxSink:
    """The ``DurableSink`` of ``AppEmitter``: writes events and their deliveries to the outbox.

    Args:
        database: where ``write`` opens its own transactions (the process database, as
            ``init_database()`` set it, when omitted).
        clock: the time new deliveries become due (tests inject one).
    """

    def __init__(self, database: Database | None = None, *, clock: Clock = utcnow) -> None:
        self._database = database
        self.clock = clock
        self._wakers: list[Callable[[], None]] = []
        install_session_hooks()

    @property
    def database(self) -> Database:
        """The database ``write`` uses."""
        return self._database or get_database()

    def add_waker(self, wake: Callable[[], None]) -> Callable[[], None]:
        """Call ``wake`` after each commit that wrote deliveries (an in-process relay's nudge).

        Returns:
            A function that removes ``wake`` again.
        """
        self._wakers.append(wake)
        return lambda: self._wakers.remove(wake) if wake in self._wakers else None

    def stage(
        self,
        session: AsyncSession,
        envelope: Envelope,
        event: Event,
        subscriptions: Sequence[Subscription],
    ) -> None:
        """Add the event and one delivery per durable listener to ``session``'s transaction."""
        _staged.add(session, _Staged(self, _new_event(envelope, event, subscriptions)))

    async def write(
        self, envelope: Envelope, event: Event, subscriptions: Sequence[Subscription]
    ) -> None:
        """Write the event and its deliveries in a transaction of their own."""
        new = _new_event(envelope, event, subscriptions)
        await repository.insert_events_now(self.database, [new], now=self.clock())
        self.woken()

    def woken(self) -> None:
        """Nudge the in-process relays: deliveries were just committed."""
        for wake in list(self._wakers):
            try:
                wake()
            except Exception:
                logger.exception("outbox waker %r failed", wake)


def _new_event(envelope: Envelope, event: Event, subscriptions: Sequence[Subscription]) -> NewEvent:
    return NewEvent(
        envelope=envelope,
        payload=event.model_dump(mode="json"),
        ordering_key=event.ordering_key(),
        dedupe_key=event.dedupe_key(),
        deliver_at=_aware(event),
        listener_ids=tuple(map(_listener_id, subscriptions)),
    )


def _aware(event: Event) -> datetime | None:
    at = event.deliver_at()
    if at is not None and at.tzinfo is None:
        raise ValueError(f"{event.name}: deliver_at() must return a timezone-aware time")
    return at


def _listener_id(sub: Subscription) -> str:
    if sub.spec.listener_id is None:
        raise ValueError(f"{sub.name} has no durable listener id")
    return sub.spec.listener_id


_hooks_installed = False


def install_session_hooks() -> None:
    """Write staged events when an ORM session commits (installed once per process)."""
    global _hooks_installed
    if _hooks_installed:
        return
    sa_event.listen(Session, "before_commit", _before_commit)
    _hooks_installed = True


def _before_commit(session: Session) -> None:
    staged = _staged.take(session)
    if not staged:
        return
    by_sink: dict[OutboxSink, list[NewEvent]] = {}
    for sink, new in staged:
        by_sink.setdefault(sink, []).append(new)
    for sink, events in by_sink.items():
        repository.insert_events(session, events, now=sink.clock())
        after_commit(session, sink.woken)

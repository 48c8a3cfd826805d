"""The outbox writer: durable deliveries staged in the emitting transaction, written at commit.

``emit()`` is synchronous, so :meth:`OutboxSink.stage` only records the event on the session.
A ``before_commit`` hook writes everything staged on that session in one statement on
PostgreSQL (events, deliveries and a ``pg_notify`` that wakes idle relays when the transaction
commits), or in a few executemany statements on SQLite. The rows therefore commit or roll back
with the business change; a savepoint that rolls back drops what was staged inside it.
Rows are written at commit, so a query earlier in the same transaction does not see them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, text
from sqlalchemy import event as sa_event
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from app.core.db import Database, get_database, utcnow, within_transaction
from app.events.base import Envelope, Event
from app.events.emitter import Subscription
from app.events.outbox.models import DeliveryStatus, OutboxDelivery, OutboxEvent

logger = logging.getLogger("app.events.outbox")

CHANNEL = "workflow_hub_outbox"
"""The LISTEN/NOTIFY channel that wakes relays on PostgreSQL."""

_STAGED = "outbox.staged"
_WRITTEN = "outbox.written"

Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class StagedEvent:
    """An event waiting for its transaction to commit."""

    sink: OutboxSink
    envelope: Envelope
    payload: dict[str, Any]
    ordering_key: str | None
    dedupe_key: str | None
    listener_ids: tuple[str, ...]
    transaction: SessionTransaction | None


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
        sync = session.sync_session
        transaction = sync.get_nested_transaction() or sync.get_transaction()
        staged: list[StagedEvent] = sync.info.setdefault(_STAGED, [])
        staged.append(self._staged(envelope, event, subscriptions, transaction))

    async def write(
        self, envelope: Envelope, event: Event, subscriptions: Sequence[Subscription]
    ) -> None:
        """Write the event and its deliveries in a transaction of their own."""
        staged = [self._staged(envelope, event, subscriptions, None)]
        database = self.database
        if database.is_sqlite:
            async with database.engine.begin() as conn:
                await conn.run_sync(_write_sqlite, staged)
        else:  # one statement is atomic by itself: no BEGIN and COMMIT round trips
            async with database.engine.connect() as conn:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.execute(_PG_WRITE, _postgresql_params(staged))
        self._woken()

    def _staged(
        self,
        envelope: Envelope,
        event: Event,
        subscriptions: Sequence[Subscription],
        transaction: SessionTransaction | None,
    ) -> StagedEvent:
        return StagedEvent(
            sink=self,
            envelope=envelope,
            payload=event.model_dump(mode="json"),
            ordering_key=event.ordering_key(),
            dedupe_key=event.dedupe_key(),
            listener_ids=tuple(sub.options["listener_id"] for sub in subscriptions),
            transaction=transaction,
        )

    def _woken(self) -> None:
        for wake in list(self._wakers):
            try:
                wake()
            except Exception:
                logger.exception("outbox waker %r failed", wake)


_hooks_installed = False


def install_session_hooks() -> None:
    """Listen to every ORM session's transaction events (once per process; idempotent)."""
    global _hooks_installed
    if _hooks_installed:
        return
    sa_event.listen(Session, "before_commit", _before_commit)
    sa_event.listen(Session, "after_commit", _after_commit)
    sa_event.listen(Session, "after_soft_rollback", _after_soft_rollback)
    sa_event.listen(Session, "after_transaction_end", _after_transaction_end)
    _hooks_installed = True


def _before_commit(session: Session) -> None:
    staged: list[StagedEvent] | None = session.info.pop(_STAGED, None)
    if not staged:
        return
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_PG_WRITE, _postgresql_params(staged))
    else:
        _write_sqlite(session, staged)
    written: set[OutboxSink] = session.info.setdefault(_WRITTEN, set())
    written.update(item.sink for item in staged)


def _after_commit(session: Session) -> None:
    written: set[OutboxSink] | None = session.info.pop(_WRITTEN, None)
    for sink in written or ():
        sink._woken()


def _after_soft_rollback(session: Session, previous_transaction: SessionTransaction) -> None:
    staged: list[StagedEvent] | None = session.info.get(_STAGED)
    if not staged:
        return
    if not previous_transaction.nested:
        session.info.pop(_STAGED, None)
        return
    kept = [
        item for item in staged if not within_transaction(item.transaction, previous_transaction)
    ]
    session.info[_STAGED] = kept


def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(_STAGED, None)
        session.info.pop(_WRITTEN, None)


_PG_WRITE = text(
    """
WITH ev AS (
    INSERT INTO outbox_events (id, name, version, organization_id, correlation_id,
                               causation_id, occurred_at, payload, ordering_key, dedupe_key)
    SELECT * FROM unnest(
        CAST(:ids AS uuid[]), CAST(:names AS text[]), CAST(:versions AS int[]),
        CAST(:orgs AS uuid[]), CAST(:correlations AS text[]), CAST(:causations AS uuid[]),
        CAST(:occurred AS timestamptz[]), CAST(CAST(:payloads AS text[]) AS jsonb[]),
        CAST(:ordering_keys AS text[]), CAST(:dedupe_keys AS text[]))
    ON CONFLICT (name, dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING
    RETURNING id
), dl AS (
    INSERT INTO outbox_deliveries (event_id, listener_id, event_name, ordering_key, status,
                                   attempts, available_at, errors, created_at, updated_at)
    SELECT d.event_id, d.listener_id, d.event_name, d.ordering_key, 'pending', 0,
           CAST(:now AS timestamptz), CAST('[]' AS jsonb), CAST(:now AS timestamptz),
           CAST(:now AS timestamptz)
    FROM unnest(CAST(:d_events AS uuid[]), CAST(:d_listeners AS text[]),
                CAST(:d_names AS text[]), CAST(:d_ordering_keys AS text[]))
         AS d(event_id, listener_id, event_name, ordering_key)
    WHERE d.event_id IN (SELECT id FROM ev)
)
SELECT pg_notify(:channel, '')
"""
)


def _postgresql_params(staged: Sequence[StagedEvent]) -> dict[str, Any]:
    """Bind every staged event and delivery as arrays: one round trip writes them all."""
    events: dict[str, list[Any]] = {
        key: []
        for key in (
            "ids",
            "names",
            "versions",
            "orgs",
            "correlations",
            "causations",
            "occurred",
            "payloads",
            "ordering_keys",
            "dedupe_keys",
        )
    }
    deliveries: dict[str, list[Any]] = {
        "d_events": [],
        "d_listeners": [],
        "d_names": [],
        "d_ordering_keys": [],
    }
    for item in staged:
        env = item.envelope
        events["ids"].append(env.id)
        events["names"].append(env.name)
        events["versions"].append(env.version)
        events["orgs"].append(env.organization_id)
        events["correlations"].append(env.correlation_id)
        events["causations"].append(env.causation_id)
        events["occurred"].append(env.occurred_at)
        events["payloads"].append(json.dumps(item.payload, separators=(",", ":")))
        events["ordering_keys"].append(item.ordering_key)
        events["dedupe_keys"].append(item.dedupe_key)
        for listener_id in item.listener_ids:
            deliveries["d_events"].append(env.id)
            deliveries["d_listeners"].append(listener_id)
            deliveries["d_names"].append(env.name)
            deliveries["d_ordering_keys"].append(item.ordering_key)
    now = staged[0].sink.clock()
    return {**events, **deliveries, "now": now, "channel": CHANNEL}


def _write_sqlite(session: Session | Connection, staged: Sequence[StagedEvent]) -> None:
    """Write the staged events (dropping duplicates of a dedupe key), then their deliveries."""
    now = staged[0].sink.clock()
    accepted: list[StagedEvent] = []
    plain: list[dict[str, Any]] = []
    for item in staged:
        row = _event_row(item)
        if item.dedupe_key is None:
            plain.append(row)
            accepted.append(item)
            continue
        result = session.execute(
            sqlite_insert(OutboxEvent)
            .values(row)
            .on_conflict_do_nothing(
                index_elements=["name", "dedupe_key"], index_where=text("dedupe_key IS NOT NULL")
            )
        )
        if getattr(result, "rowcount", 0):
            accepted.append(item)
    if plain:
        session.execute(insert(OutboxEvent), plain)
    rows: list[dict[str, Any]] = [
        {
            "event_id": item.envelope.id,
            "listener_id": listener_id,
            "event_name": item.envelope.name,
            "ordering_key": item.ordering_key,
            "status": DeliveryStatus.PENDING.value,
            "attempts": 0,
            "available_at": now,
            "errors": [],
            "created_at": now,
            "updated_at": now,
        }
        for item in accepted
        for listener_id in item.listener_ids
    ]
    if rows:
        session.execute(insert(OutboxDelivery), rows)


def _event_row(item: StagedEvent) -> dict[str, Any]:
    env = item.envelope
    return {
        "id": env.id,
        "name": env.name,
        "version": env.version,
        "organization_id": env.organization_id,
        "correlation_id": env.correlation_id,
        "causation_id": env.causation_id,
        "occurred_at": env.occurred_at,
        "payload": item.payload,
        "ordering_key": item.ordering_key,
        "dedupe_key": item.dedupe_key,
    }

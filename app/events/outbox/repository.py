"""The outbox's SQL, all of it: writing events, claiming and settling deliveries, operating them.

- Writing: the emitting transaction's events and their deliveries, in one statement on
  PostgreSQL (with the ``pg_notify`` that wakes idle relays at commit), a few on SQLite.
- The relay: claim due deliveries, then complete, fail, release, heartbeat or rescue them.
  Every change to a claimed delivery is fenced by its lease token: once a lease expired and
  another relay re-claimed the delivery, the first relay's completion matches no row, and its
  listener's writes roll back with it.
- Operating: list, read, retry, discard and replay deliveries, and prune the history.

Functions that take a session never commit; the caller's scope does. Functions that take a
``Database`` run in transactions of their own.
"""

from __future__ import annotations

import asyncio
import json
import logging
import traceback
import uuid
import weakref
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from pydantic import ValidationError
from sqlalchemy import (
    BindParameter,
    Connection,
    CursorResult,
    Row,
    Table,
    Text,
    bindparam,
    delete,
    exists,
    func,
    insert,
    literal,
    literal_column,
    or_,
    select,
    text,
    true,
    type_coerce,
    update,
)
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import Session

from app.core.db import Database
from app.events.base import Envelope, Event, event_type
from app.events.outbox.errors import PayloadInvalid
from app.events.outbox.listen_notify import CHANNEL
from app.events.outbox.models import (
    HOLDING_STATUSES,
    RUNNING_KEY_INDEX,
    DeliveryStatus,
    JSONType,
    OutboxDelivery,
    OutboxEvent,
    first_id_at,
    idempotency_key,
)
from app.events.retry import RetryDecision, RetryPolicy
from app.events.subscription import qualified_name

logger = logging.getLogger(__name__)

DELIVERIES = cast(Table, OutboxDelivery.__table__)
EVENTS = cast(Table, OutboxEvent.__table__)
TRACEBACK_LIMIT = 16_000
"""Characters of one traceback kept in the error history (the end, where the raise is)."""
LAST_ERROR_LIMIT = 2000
"""Characters of ``last_error``, the one-line summary of the latest failure."""

_PENDING, _RUNNING = DeliveryStatus.PENDING.value, DeliveryStatus.RUNNING.value
_DEAD = DeliveryStatus.DEAD.value


def _rowcount(result: Any) -> int:
    return int(cast(CursorResult[Any], result).rowcount or 0)


# -- writing events ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to store, with one delivery per durable listener id."""

    envelope: Envelope
    payload: dict[str, Any]
    ordering_key: str | None
    dedupe_key: str | None
    listener_ids: tuple[str, ...]
    deliver_at: datetime | None = None
    """When its deliveries become due (``Event.deliver_at``); at once when None or past."""

    def due(self, now: datetime) -> datetime:
        """When its deliveries become due, written at ``now``."""
        return now if self.deliver_at is None else max(now, self.deliver_at)


def insert_events(bind: Session | Connection, events: Sequence[NewEvent], *, now: datetime) -> None:
    """Write ``events`` and their deliveries (due at ``now`` or their ``deliver_at``) in
    ``bind``'s transaction.

    An event whose name and dedupe key are already stored is dropped with its deliveries. On
    PostgreSQL, one statement writes everything and notifies the relays (at commit).
    """
    dialect = bind.dialect if isinstance(bind, Connection) else bind.get_bind().dialect
    if dialect.name == "postgresql":
        bind.execute(_PG_WRITE, _postgresql_params(events, now))
    else:
        _insert_sqlite(bind, events, now)


async def insert_events_now(
    database: Database, events: Sequence[NewEvent], *, now: datetime
) -> None:
    """Write ``events`` and their deliveries in a transaction of their own."""
    if database.is_sqlite:
        async with database.engine.begin() as conn:
            await conn.run_sync(_insert_sqlite, events, now)
    else:  # one statement is atomic by itself: no BEGIN and COMMIT round trips
        async with database.engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(_PG_WRITE, _postgresql_params(events, now))


_PG_WRITE = text(
    """
WITH ev AS (
    INSERT INTO outbox_events (id, name, version, organization_id, correlation_id,
                               causation_id, occurred_at, payload, ordering_key, dedupe_key,
                               traceparent)
    SELECT * FROM unnest(
        CAST(:ids AS uuid[]), CAST(:names AS text[]), CAST(:versions AS int[]),
        CAST(:orgs AS uuid[]), CAST(:correlations AS text[]), CAST(:causations AS uuid[]),
        CAST(:occurred AS timestamptz[]), CAST(CAST(:payloads AS text[]) AS jsonb[]),
        CAST(:ordering_keys AS text[]), CAST(:dedupe_keys AS text[]),
        CAST(:traceparents AS text[]))
    ON CONFLICT (name, dedupe_key, organization_id) WHERE dedupe_key IS NOT NULL DO NOTHING
    RETURNING id
), d AS (
    SELECT * FROM unnest(CAST(:d_events AS uuid[]), CAST(:d_listeners AS text[]),
                         CAST(:d_names AS text[]), CAST(:d_ordering_keys AS text[]),
                         CAST(:d_due AS timestamptz[]))
         AS d(event_id, listener_id, event_name, ordering_key, due)
), dead AS (
    -- The dead letters of these keys, locked FOR SHARE: an operator's retry or discard of one
    -- (which releases what it holds) waits for this commit, so what is written held here is
    -- released too.
    SELECT x.listener_id, x.ordering_key FROM outbox_deliveries x
    WHERE x.status = 'dead' AND x.ordering_key IS NOT NULL
      AND (x.listener_id, x.ordering_key) IN (
          SELECT listener_id, ordering_key FROM d WHERE ordering_key IS NOT NULL)
    FOR SHARE OF x
), dl AS (
    INSERT INTO outbox_deliveries (event_id, listener_id, event_name, ordering_key, status,
                                   attempts, available_at, errors, created_at, updated_at, held)
    SELECT d.event_id, d.listener_id, d.event_name, d.ordering_key, 'pending', 0,
           d.due, CAST('[]' AS jsonb), CAST(:now AS timestamptz),
           CAST(:now AS timestamptz),
           EXISTS (SELECT 1 FROM dead
                   WHERE dead.listener_id = d.listener_id AND dead.ordering_key = d.ordering_key)
    FROM d
    WHERE d.event_id IN (SELECT id FROM ev)
)
SELECT pg_notify(:channel, '')
"""
)


def _postgresql_params(events: Sequence[NewEvent], now: datetime) -> dict[str, Any]:
    """Bind every event and delivery as arrays: one round trip writes them all."""
    columns: dict[str, list[Any]] = {
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
            "traceparents",
            "d_events",
            "d_listeners",
            "d_names",
            "d_ordering_keys",
            "d_due",
        )
    }
    for item in events:
        env = item.envelope
        columns["ids"].append(env.id)
        columns["names"].append(env.name)
        columns["versions"].append(env.version)
        columns["orgs"].append(env.organization_id)
        columns["correlations"].append(env.correlation_id)
        columns["causations"].append(env.causation_id)
        columns["occurred"].append(env.occurred_at)
        columns["payloads"].append(json.dumps(item.payload, separators=(",", ":")))
        columns["ordering_keys"].append(item.ordering_key)
        columns["dedupe_keys"].append(item.dedupe_key)
        columns["traceparents"].append(env.traceparent)
        due = item.due(now)
        for listener_id in item.listener_ids:
            columns["d_due"].append(due)
            columns["d_events"].append(env.id)
            columns["d_listeners"].append(listener_id)
            columns["d_names"].append(env.name)
            columns["d_ordering_keys"].append(item.ordering_key)
    return {**columns, "now": now, "channel": CHANNEL}


def _insert_sqlite(bind: Session | Connection, events: Sequence[NewEvent], now: datetime) -> None:
    """Write the events (dropping duplicates of a dedupe key), then their deliveries."""
    accepted: list[NewEvent] = []
    plain: list[dict[str, Any]] = []
    for item in events:
        row = _event_row(item)
        if item.dedupe_key is None:
            plain.append(row)
            accepted.append(item)
            continue
        result = bind.execute(
            sqlite_insert(OutboxEvent)
            .values(row)
            .on_conflict_do_nothing(
                index_elements=["name", "dedupe_key", "organization_id"],
                index_where=text("dedupe_key IS NOT NULL"),
            )
        )
        if _rowcount(result):
            accepted.append(item)
    if plain:
        bind.execute(insert(OutboxEvent), plain)
    dead = _dead_keys(bind, accepted)
    rows: list[dict[str, Any]] = [
        {
            "event_id": item.envelope.id,
            "listener_id": listener_id,
            "event_name": item.envelope.name,
            "ordering_key": item.ordering_key,
            "status": _PENDING,
            "attempts": 0,
            "available_at": item.due(now),
            "errors": [],
            "created_at": now,
            "updated_at": now,
            "held": (listener_id, item.ordering_key) in dead,
        }
        for item in accepted
        for listener_id in item.listener_ids
    ]
    if rows:
        bind.execute(insert(OutboxDelivery), rows)


def _dead_keys(
    bind: Session | Connection, events: Sequence[NewEvent]
) -> set[tuple[str, str | None]]:
    """The (listener, ordering key) pairs of ``events`` that have a dead letter (SQLite)."""
    keys = {item.ordering_key for item in events if item.ordering_key is not None}
    if not keys:
        return set()
    rows = bind.execute(
        select(DELIVERIES.c.listener_id, DELIVERIES.c.ordering_key).where(
            DELIVERIES.c.status == _DEAD, DELIVERIES.c.ordering_key.in_(keys)
        )
    )
    return {(row.listener_id, row.ordering_key) for row in rows}


def _event_row(item: NewEvent) -> dict[str, Any]:
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
        "traceparent": env.traceparent,
    }


async def notify_relays(session: AsyncSession) -> None:
    """Wake PostgreSQL relays when ``session``'s transaction commits (no-op on SQLite)."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})


# -- the relay: claiming and settling deliveries -----------------------------------------------


@dataclass(frozen=True, slots=True)
class Claim:
    """A delivery this relay holds under ``token``, with its stored event."""

    id: int
    listener_id: str
    attempts: int
    token: uuid.UUID
    event_id: uuid.UUID
    name: str
    version: int
    organization_id: uuid.UUID | None
    correlation_id: str
    causation_id: uuid.UUID | None
    occurred_at: datetime
    ordering_key: str | None
    payload: str
    """The stored JSON, undecoded: :func:`rebuild` decodes it, so a payload that cannot be
    decoded fails its own delivery (a dead letter), never the claim of every delivery."""
    available_at: datetime | None = None
    """When it became due (what the relay's claim-lag histogram measures from)."""
    traceparent: str | None = None
    """The emit's W3C trace context, continued by the delivery's span."""

    @property
    def idempotency_key(self) -> str:
        """``"<event id>:<listener id>"``: stable across retries and replays."""
        return idempotency_key(self.event_id, self.listener_id)


_PG_CLAIM = text(
    """
WITH cand AS MATERIALIZED (
    SELECT d.id FROM outbox_deliveries d
    WHERE d.status = 'pending' AND NOT d.held AND d.available_at <= :now
      AND d.listener_id = ANY(:listeners)
      AND (d.ordering_key IS NULL OR NOT EXISTS (
            SELECT 1 FROM outbox_deliveries p
            WHERE p.listener_id = d.listener_id AND p.ordering_key = d.ordering_key
              AND p.status IN ('pending', 'running', 'dead')
              AND (p.id < d.id OR p.status = 'running')))
    ORDER BY d.available_at, d.id
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE outbox_deliveries d
    SET status = 'running', attempts = d.attempts + 1, lease_until = :lease_until,
        lease_token = :token, worker = :worker, updated_at = :now
    FROM cand WHERE d.id = cand.id
    RETURNING d.id, d.listener_id, d.attempts, d.event_id, d.ordering_key, d.available_at
)
SELECT c.id, c.listener_id, c.attempts, c.ordering_key, c.available_at,
       e.id AS event_id, e.name, e.version,
       e.organization_id, e.correlation_id, e.causation_id, e.occurred_at, e.traceparent,
       e.payload::text AS payload
FROM claimed c JOIN outbox_events e ON e.id = c.event_id
ORDER BY c.id
"""
)

_sqlite_claimers: weakref.WeakKeyDictionary[Database, asyncio.Lock] = weakref.WeakKeyDictionary()


def lost_key_race(exc: IntegrityError) -> bool:
    """Whether ``exc`` is the running-key index refusing a second running delivery of a key."""
    message = str(exc.orig)
    # PostgreSQL names the index; SQLite names its columns.
    return RUNNING_KEY_INDEX in message or _SQLITE_RUNNING_KEY in message


_SQLITE_RUNNING_KEY = (
    "UNIQUE constraint failed: outbox_deliveries.listener_id, outbox_deliveries.ordering_key"
)

CLAIM_ATTEMPTS = 3
"""How many times a claim that lost an ordering-key race is tried again before giving up."""


async def claim(
    database: Database,
    *,
    listeners: Sequence[str],
    limit: int,
    now: datetime,
    lease_until: datetime,
    worker: str,
) -> list[Claim]:
    """Claim up to ``limit`` due deliveries of ``listeners`` under one new lease token.

    A delivery with an ordering key is due only when no other delivery of the same listener
    and key is running, and no earlier one is pending or dead (``HOLDING_STATUSES``): one
    key's deliveries never run concurrently, and they run in order. A dead letter holds back
    the later deliveries of its key until an operator retries or discards it.
    PostgreSQL claims with ``FOR UPDATE SKIP LOCKED`` (relays skip each other's rows; they
    wait only when both start one key at the same moment, on the index below);
    SQLite serialises writers, and one claimer per process and database runs at a time. The
    unique index ``RUNNING_KEY_INDEX`` settles two relays claiming one key at the same moment:
    the loser's batch rolls back and is claimed again.
    """
    if not listeners or limit <= 0:
        return []
    token = uuid.uuid4()
    params: dict[str, Any] = {
        "now": now,
        "lease_until": lease_until,
        "token": token,
        "worker": worker,
        "limit": limit,
    }
    for attempt in range(1, CLAIM_ATTEMPTS + 1):
        try:
            return await _claim_once(database, listeners, token, params)
        except IntegrityError as exc:
            if not lost_key_race(exc):
                raise
            # Another relay started a delivery of the same key since our snapshot: the whole
            # batch rolled back; claiming again sees that delivery and skips its key.
            logger.info("claim lost an ordering-key race (attempt %d); claiming again", attempt)
    return []


async def _claim_once(
    database: Database, listeners: Sequence[str], token: uuid.UUID, params: dict[str, Any]
) -> list[Claim]:
    if not database.is_sqlite:
        async with database.engine.begin() as conn:
            result = await conn.execute(_PG_CLAIM, {**params, "listeners": list(listeners)})
            return [_claim(row, token) for row in result.mappings()]
    lock = _sqlite_claimers.setdefault(database, asyncio.Lock())
    async with lock, database.engine.begin() as conn:
        return await _claim_sqlite(conn, listeners, token, params)


async def _claim_sqlite(
    conn: AsyncConnection, listeners: Sequence[str], token: uuid.UUID, params: dict[str, Any]
) -> list[Claim]:
    cand, other = DELIVERIES.alias("cand"), DELIVERIES.alias("other")
    # Statuses rendered as literals, as in the partial index's predicate: SQLite then uses it.
    holding: BindParameter[str] = bindparam(
        "holding", list(HOLDING_STATUSES), expanding=True, literal_execute=True
    )
    held_back = (
        exists()
        .where(other.c.listener_id == cand.c.listener_id)
        .where(other.c.ordering_key == cand.c.ordering_key)
        .where(other.c.status.in_(holding))
        .where(or_(other.c.id < cand.c.id, other.c.status == _RUNNING))
    )
    due = (
        select(cand.c.id)
        .where(cand.c.status == literal_column(f"'{_PENDING}'"), ~cand.c.held)
        .where(cand.c.available_at <= params["now"])
        .where(cand.c.listener_id.in_(listeners))
        .where(or_(cand.c.ordering_key.is_(None), ~held_back))
        .order_by(cand.c.available_at, cand.c.id)
        .limit(params["limit"])
    )
    claimed = await conn.execute(
        update(DELIVERIES)
        .where(DELIVERIES.c.id.in_(due.scalar_subquery()))
        .values(
            status=_RUNNING,
            attempts=DELIVERIES.c.attempts + 1,
            lease_until=params["lease_until"],
            lease_token=token,
            worker=params["worker"],
            updated_at=params["now"],
        )
        .returning(
            DELIVERIES.c.id,
            DELIVERIES.c.listener_id,
            DELIVERIES.c.attempts,
            DELIVERIES.c.event_id,
            DELIVERIES.c.ordering_key,
            DELIVERIES.c.available_at,
        )
    )
    deliveries = sorted(claimed.mappings(), key=lambda row: int(row["id"]))
    if not deliveries:
        return []
    event_ids = {row["event_id"] for row in deliveries}
    raw_payload = type_coerce(EVENTS.c.payload, Text).label("payload")
    columns = [column for column in EVENTS.c if column.key != "payload"]
    events = await conn.execute(select(*columns, raw_payload).where(EVENTS.c.id.in_(event_ids)))
    by_id = {row["id"]: row for row in events.mappings()}
    return [
        _claim({**by_id[row["event_id"]], **row, "event_id": row["event_id"]}, token)
        for row in deliveries
    ]


def _claim(row: Any, token: uuid.UUID) -> Claim:
    return Claim(
        id=int(row["id"]),
        listener_id=row["listener_id"],
        attempts=int(row["attempts"]),
        token=token,
        event_id=row["event_id"],
        name=row["name"],
        version=int(row["version"]),
        organization_id=row["organization_id"],
        correlation_id=row["correlation_id"],
        causation_id=row["causation_id"],
        occurred_at=row["occurred_at"],
        ordering_key=row["ordering_key"],
        payload=row["payload"],
        available_at=row["available_at"],
        traceparent=row["traceparent"],
    )


def _fenced(delivery_id: int, token: uuid.UUID) -> Any:
    return (
        update(DELIVERIES)
        .where(DELIVERIES.c.id == delivery_id, DELIVERIES.c.lease_token == token)
        .where(DELIVERIES.c.status == _RUNNING)
    )


_COMPLETE = text(
    "UPDATE outbox_deliveries SET status = 'done', completed_at = :now, updated_at = :now, "
    "lease_until = NULL, lease_token = NULL "
    "WHERE id = :id AND lease_token = :token AND status = 'running'"
).bindparams(
    bindparam("now", type_=DELIVERIES.c.completed_at.type),
    bindparam("token", type_=DELIVERIES.c.lease_token.type),
)
"""Built once: completion is on every delivery's path."""


async def complete(session: AsyncSession, claimed: Claim, *, now: datetime) -> bool:
    """Mark ``claimed`` done in the listener's own transaction; False when the lease was lost."""
    result = await session.execute(
        _COMPLETE, {"now": now, "id": claimed.id, "token": claimed.token}
    )
    return _rowcount(result) == 1


def error_entry(
    *, attempt: int, at: datetime, exc: BaseException | None, kind: str = "", message: str = ""
) -> dict[str, Any]:
    """Describe one failed attempt for the error history."""
    if exc is not None:
        kind = kind or qualified_name(type(exc))
        message = message or str(exc) or repr(exc)
        trace = "".join(traceback.format_exception(exc))[-TRACEBACK_LIMIT:]
    else:
        trace = None
    return {
        "attempt": attempt,
        "at": at.isoformat(),
        "type": kind,
        "message": message,
        "traceback": trace,
    }


def _failed_values(
    entry: dict[str, Any], errors: Sequence[Any], decision: RetryDecision, now: datetime
) -> dict[str, Any]:
    """The new values of a delivery whose attempt failed: pending again later, or dead."""
    return {
        "status": _DEAD if decision.dead else _PENDING,
        "available_at": now + timedelta(seconds=decision.delay),
        "errors": [*errors, entry],
        "last_error": f"{entry['type']}: {entry['message']}"[:LAST_ERROR_LIMIT],
        "lease_until": None,
        "lease_token": None,
        "updated_at": now,
        "completed_at": now if decision.dead else None,
    }


async def record_failure(
    database: Database,
    claimed: Claim,
    *,
    entry: dict[str, Any],
    decision: RetryDecision,
    now: datetime,
) -> bool:
    """Append ``entry`` to the error history, and act on the retry policy's ``decision``.

    Returns:
        False when the lease was lost meanwhile (another relay owns the delivery now).
    """
    async with database.sessionmaker() as session, session.begin():
        errors = (
            await session.execute(
                select(DELIVERIES.c.errors).where(
                    DELIVERIES.c.id == claimed.id,
                    DELIVERIES.c.lease_token == claimed.token,
                    DELIVERIES.c.status == _RUNNING,
                )
            )
        ).scalar_one_or_none()
        if errors is None:
            return False
        result = await session.execute(
            _fenced(claimed.id, claimed.token).values(
                **_failed_values(entry, errors, decision, now)
            )
        )
        if _rowcount(result) != 1:
            return False
        if decision.dead:
            await _hold_behind(session, claimed.id, claimed.listener_id, claimed.ordering_key)
        return True


async def _hold_behind(
    session: AsyncSession, dead_id: int, listener_id: str, ordering_key: str | None
) -> None:
    """Mark the pending deliveries a new dead letter holds back, so the claim skips them."""
    if ordering_key is None:
        return
    await session.execute(
        update(DELIVERIES)
        .where(DELIVERIES.c.listener_id == listener_id)
        .where(DELIVERIES.c.ordering_key == ordering_key)
        .where(DELIVERIES.c.status == _PENDING, DELIVERIES.c.id > dead_id, ~DELIVERIES.c.held)
        .values(held=True)
    )


async def release_held(session: AsyncSession, *, listener_id: str, ordering_key: str) -> int:
    """Give the claim back what a dead letter held, once it is retried or discarded.

    Deliveries still behind another dead letter of their key stay held.

    Returns:
        How many deliveries were released.
    """
    other = DELIVERIES.alias("other")
    behind_another = (
        exists()
        .where(other.c.listener_id == DELIVERIES.c.listener_id)
        .where(other.c.ordering_key == DELIVERIES.c.ordering_key)
        .where(other.c.status == _DEAD, other.c.id < DELIVERIES.c.id)
    )
    result = await session.execute(
        update(DELIVERIES)
        .where(DELIVERIES.c.listener_id == listener_id)
        .where(DELIVERIES.c.ordering_key == ordering_key, DELIVERIES.c.held)
        .where(~behind_another)
        .values(held=False)
    )
    return _rowcount(result)


@dataclass(frozen=True, slots=True)
class OutboxStats:
    """The open work of the outbox: deliveries by status, and the oldest due one."""

    counts: dict[str, int]
    """``pending`` (not held), ``held``, ``running`` and ``dead``; absent ones are 0."""
    oldest_due_at: datetime | None
    """The ``available_at`` of the oldest due, unheld, pending delivery (None: none is due)."""


_OPEN_COUNTS = text(
    "SELECT status, held, count(*) AS n FROM outbox_deliveries "
    "WHERE status IN ('pending', 'running', 'dead') GROUP BY status, held"
)


async def outbox_stats(database: Database, *, now: datetime) -> OutboxStats:
    """Count the open deliveries and find the oldest due one (the relay's gauges).

    Both read indexes of open work only: the counts use the ``status``/``available_at`` index
    (cost grows with the backlog, never with the done history), and the oldest due delivery is
    the first entry of the claim's partial index ``ix_outbox_deliveries_due``.
    """
    counts = {"pending": 0, "held": 0, "running": 0, "dead": 0}
    async with database.engine.connect() as conn:
        for row in (await conn.execute(_OPEN_COUNTS)).mappings():
            status = "held" if row["status"] == _PENDING and row["held"] else row["status"]
            counts[status] += int(row["n"])
        oldest = (
            await conn.execute(
                select(func.min(DELIVERIES.c.available_at))
                .where(DELIVERIES.c.status == literal_column(f"'{_PENDING}'"))
                .where(~DELIVERIES.c.held, DELIVERIES.c.available_at <= now)
            )
        ).scalar()
    return OutboxStats(counts, oldest)


async def release(database: Database, claims: Sequence[Claim], *, now: datetime) -> int:
    """Hand claimed deliveries back untried (shutdown): pending now, the attempt not counted."""
    released = 0
    async with database.engine.begin() as conn:
        for claimed in claims:
            result = await conn.execute(
                _fenced(claimed.id, claimed.token).values(
                    status=_PENDING,
                    attempts=DELIVERIES.c.attempts - 1,
                    available_at=now,
                    lease_until=None,
                    lease_token=None,
                    updated_at=now,
                )
            )
            released += _rowcount(result)
    return released


async def defer(database: Database, claimed: Claim, *, until: datetime, now: datetime) -> bool:
    """Make a claimed delivery pending again at ``until``, its attempt not counted (``Defer``).

    Returns:
        False when the lease was lost meanwhile (another relay owns the delivery now).
    """
    async with database.engine.begin() as conn:
        result = await conn.execute(
            _fenced(claimed.id, claimed.token).values(
                status=_PENDING,
                attempts=DELIVERIES.c.attempts - 1,
                available_at=max(until, now),
                lease_until=None,
                lease_token=None,
                updated_at=now,
            )
        )
        return _rowcount(result) == 1


async def heartbeat(database: Database, tokens: Sequence[uuid.UUID], *, until: datetime) -> int:
    """Extend the leases of the deliveries held under ``tokens`` to ``until``.

    A row locked by another transaction is skipped, never waited for (``SKIP LOCKED`` on
    PostgreSQL): it is the holder's own completion, failure or release on its way to commit
    (the row leaves ``running``), or a rescue of a lease already lost. Waiting would hold every
    other renewal of the batch behind a commit that a busy process is slow to send.
    """
    if not tokens:
        return 0
    held = (
        select(DELIVERIES.c.id)
        .where(DELIVERIES.c.status == _RUNNING, DELIVERIES.c.lease_token.in_(tokens))
        .with_for_update(skip_locked=True)
    )
    async with database.engine.begin() as conn:
        result = await conn.execute(
            update(DELIVERIES)
            .where(DELIVERIES.c.id.in_(held.scalar_subquery()))
            .values(lease_until=until)
        )
        return _rowcount(result)


async def rescue_expired(
    database: Database,
    *,
    listeners: Sequence[str],
    policy_of: Callable[[str], RetryPolicy],
    now: datetime,
    rand: Callable[[], float],
    limit: int = 100,
    keep: Collection[uuid.UUID] = (),
) -> int:
    """Return deliveries whose lease expired (their worker died or stalled) to the queue.

    The lost attempt is recorded in the error history and counts toward ``max_attempts``.
    ``keep`` names the lease tokens the caller itself still holds: a relay whose heartbeat
    was late never takes back a delivery it is still running.
    """
    if not listeners:
        return 0
    rescued = 0
    async with database.sessionmaker() as session, session.begin():
        rows = (
            await session.execute(
                select(
                    DELIVERIES.c.id,
                    DELIVERIES.c.listener_id,
                    DELIVERIES.c.ordering_key,
                    DELIVERIES.c.attempts,
                    DELIVERIES.c.errors,
                    DELIVERIES.c.lease_token,
                    DELIVERIES.c.worker,
                )
                .where(DELIVERIES.c.status == _RUNNING, DELIVERIES.c.lease_until < now)
                .where(DELIVERIES.c.listener_id.in_(listeners))
                .where(DELIVERIES.c.lease_token.not_in(list(keep)) if keep else true())
                .order_by(DELIVERIES.c.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).all()
        for row in rows:
            entry = error_entry(
                attempt=row.attempts,
                at=now,
                exc=None,
                kind="LeaseExpired",
                message=f"the lease of worker {row.worker} expired: it died or stalled",
            )
            decision = policy_of(row.listener_id).decide(row.attempts, rand())
            result = await session.execute(
                _fenced(row.id, row.lease_token).values(
                    **_failed_values(entry, row.errors, decision, now)
                )
            )
            if _rowcount(result) and decision.dead:
                await _hold_behind(session, row.id, row.listener_id, row.ordering_key)
            rescued += _rowcount(result)
    return rescued


def rebuild(claimed: Claim) -> tuple[Event, Envelope]:
    """Rebuild the typed event and its envelope from a claimed row.

    The claim hands the payload over as stored text, and it is decoded here, so a payload that
    cannot be decoded fails its own delivery instead of every claim.

    Raises:
        PayloadInvalid: the event name is no longer declared, or its payload is not JSON Python
            can decode or no longer validates against the contract (the delivery becomes a
            dead letter).
    """
    cls = event_type(claimed.name)
    if cls is None:
        raise PayloadInvalid(f"no Event class declares {claimed.name!r} any more")
    # RecursionError: nesting that PostgreSQL's jsonb accepts can exceed Python's decoder.
    try:
        payload = json.loads(claimed.payload)
    except (ValueError, RecursionError) as exc:
        raise PayloadInvalid(
            f"the stored payload of {claimed.name!r} (version {claimed.version}) cannot be "
            f"decoded as JSON: {exc}"
        ) from exc
    try:
        event = cls.model_validate(payload)
    except (ValidationError, TypeError, ValueError) as exc:
        raise PayloadInvalid(
            f"the stored payload of {claimed.name!r} (version {claimed.version}) does not "
            f"validate against {cls.__module__}.{cls.__qualname__} (version {cls.version}): "
            f"{exc}"
        ) from exc
    envelope = Envelope(
        id=claimed.event_id,
        name=claimed.name,
        organization_id=claimed.organization_id,
        correlation_id=claimed.correlation_id,
        causation_id=claimed.causation_id,
        version=claimed.version,
        occurred_at=claimed.occurred_at,
        traceparent=claimed.traceparent,
    )
    return event, envelope


# -- operating: list, read, retry, discard, replay, prune ---------------------------------------


def _columns() -> list[Any]:
    return [
        *DELIVERIES.c,
        EVENTS.c.organization_id,
        EVENTS.c.correlation_id,
        EVENTS.c.occurred_at,
        EVENTS.c.causation_id,
        EVENTS.c.version,
        # As text: a stored payload that cannot be decoded must not hide its dead letter.
        EVENTS.c.payload.cast(Text).label("payload"),
    ]


_JOINED = DELIVERIES.join(EVENTS, EVENTS.c.id == DELIVERIES.c.event_id)


async def page_deliveries(
    session: AsyncSession,
    *,
    status: str | None,
    listener_id: str | None,
    event_name: str | None,
    organization_id: uuid.UUID | None,
    limit: int,
    offset: int,
) -> tuple[int, Sequence[Row[Any]]]:
    """Return the count of matching deliveries and one page of them, newest first."""
    conditions = []
    if status is not None:
        conditions.append(DELIVERIES.c.status == status)
    if listener_id is not None:
        conditions.append(DELIVERIES.c.listener_id == listener_id)
    if event_name is not None:
        conditions.append(DELIVERIES.c.event_name == event_name)
    if organization_id is not None:
        conditions.append(EVENTS.c.organization_id == organization_id)
    total = await session.scalar(select(func.count()).select_from(_JOINED).where(*conditions))
    rows = await session.execute(
        select(*_columns())
        .select_from(_JOINED)
        .where(*conditions)
        .order_by(DELIVERIES.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return total or 0, rows.all()


async def delivery_row(
    session: AsyncSession, delivery_id: int, *, organization_id: uuid.UUID | None
) -> Row[Any] | None:
    """Return a delivery joined with its event (in this organisation, when given)."""
    query = select(*_columns()).select_from(_JOINED).where(DELIVERIES.c.id == delivery_id)
    if organization_id is not None:
        query = query.where(EVENTS.c.organization_id == organization_id)
    return (await session.execute(query)).first()


async def requeue(session: AsyncSession, delivery_id: int, *, seen: str, now: datetime) -> bool:
    """Make a delivery pending now with a fresh attempt budget, if it is still ``seen``."""
    result = await session.execute(
        update(DELIVERIES)
        .where(DELIVERIES.c.id == delivery_id, DELIVERIES.c.status == seen)
        .values(
            status=_PENDING,
            attempts=0,
            available_at=now,
            completed_at=None,
            lease_until=None,
            lease_token=None,
            updated_at=now,
        )
    )
    return _rowcount(result) == 1


async def discard(session: AsyncSession, delivery_id: int, *, seen: str, now: datetime) -> bool:
    """Mark a delivery discarded, if it is still ``seen``."""
    result = await session.execute(
        update(DELIVERIES)
        .where(DELIVERIES.c.id == delivery_id, DELIVERIES.c.status == seen)
        .values(status=DeliveryStatus.DISCARDED.value, completed_at=now, updated_at=now)
    )
    return _rowcount(result) == 1


def _window(
    since: datetime, until: datetime | None, organization_id: uuid.UUID | None
) -> list[Any]:
    # The id bounds use the primary key (ids are time-ordered); occurred_at keeps it exact.
    window = [EVENTS.c.id >= first_id_at(since), EVENTS.c.occurred_at >= since]
    if until is not None:
        window += [EVENTS.c.id < first_id_at(until, offset_ms=1), EVENTS.c.occurred_at < until]
    if organization_id is not None:
        window.append(EVENTS.c.organization_id == organization_id)
    return window


async def stored_event_names(
    session: AsyncSession,
    *,
    since: datetime,
    until: datetime | None,
    organization_id: uuid.UUID | None,
) -> list[str]:
    """Return the distinct names of the events stored in a time window."""
    window = _window(since, until, organization_id)
    return list((await session.scalars(select(EVENTS.c.name).where(*window).distinct())).all())


async def queue_replay(
    session: AsyncSession,
    *,
    listener_id: str,
    names: Sequence[str],
    since: datetime,
    until: datetime | None,
    organization_id: uuid.UUID | None,
    now: datetime,
) -> int:
    """Add a pending delivery to ``listener_id`` of each stored event of ``names`` in a window.

    An event that already has a pending, running or dead delivery to it is skipped.

    Returns:
        How many deliveries were queued.
    """
    window = _window(since, until, organization_id)
    # Lock this listener's dead letters FOR SHARE (PostgreSQL): an operator's retry or discard
    # of one waits for this commit, so what is queued held here is released with it.
    await session.execute(
        select(DELIVERIES.c.id)
        .where(DELIVERIES.c.listener_id == listener_id, DELIVERIES.c.status == _DEAD)
        .where(DELIVERIES.c.ordering_key.is_not(None))
        .with_for_update(read=True)
    )
    dead = DELIVERIES.alias("dead")
    held = (
        exists()
        .where(dead.c.listener_id == listener_id, dead.c.ordering_key == EVENTS.c.ordering_key)
        .where(dead.c.status == _DEAD)
    )
    already_open = (
        exists()
        .where(DELIVERIES.c.event_id == EVENTS.c.id, DELIVERIES.c.listener_id == listener_id)
        .where(DELIVERIES.c.status.in_(HOLDING_STATUSES))
    )
    source = (
        select(
            EVENTS.c.id,
            literal(listener_id),
            EVENTS.c.name,
            EVENTS.c.ordering_key,
            literal(_PENDING),
            literal(0),
            literal(now, DELIVERIES.c.available_at.type),
            literal([], JSONType),
            literal(now, DELIVERIES.c.created_at.type),
            literal(now, DELIVERIES.c.updated_at.type),
            held,
        )
        .where(EVENTS.c.name.in_(names), *window, ~already_open)
        .order_by(EVENTS.c.occurred_at, EVENTS.c.id)
    )
    columns = [
        "event_id",
        "listener_id",
        "event_name",
        "ordering_key",
        "status",
        "attempts",
        "available_at",
        "errors",
        "created_at",
        "updated_at",
        "held",
    ]
    result = await session.execute(insert(DELIVERIES).from_select(columns, source))
    return _rowcount(result)


async def prune_batch(session: AsyncSession, *, cutoff: datetime, limit: int) -> int:
    """Delete up to ``limit`` events older than ``cutoff`` whose deliveries are all finished.

    Dead letters and unfinished deliveries keep their event.

    Returns:
        How many events were deleted (their deliveries go with them).
    """
    unfinished = (_PENDING, _RUNNING, _DEAD)
    held = exists().where(DELIVERIES.c.event_id == EVENTS.c.id, DELIVERIES.c.status.in_(unfinished))
    ids: Sequence[Any] = (
        await session.scalars(
            select(EVENTS.c.id)
            .where(EVENTS.c.id < first_id_at(cutoff), EVENTS.c.occurred_at < cutoff, ~held)
            .order_by(EVENTS.c.id)
            .limit(limit)
        )
    ).all()
    if ids:
        await session.execute(delete(DELIVERIES).where(DELIVERIES.c.event_id.in_(ids)))
        await session.execute(delete(EVENTS).where(EVENTS.c.id.in_(ids)))
    return len(ids)

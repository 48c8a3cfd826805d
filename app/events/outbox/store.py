"""The relay's SQL: claim due deliveries, then complete, fail, release, heartbeat or rescue them.

Every change to a claimed delivery is fenced by its lease token: once a lease expired and
another relay re-claimed the delivery, the first relay's completion matches no row, and its
listener's writes roll back with it.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
import uuid
import weakref
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    BindParameter,
    CursorResult,
    Table,
    Text,
    bindparam,
    exists,
    or_,
    select,
    text,
    true,
    type_coerce,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.core.db import Database
from app.events.delivery import RetryPolicy
from app.events.emitter import qualified_name
from app.events.outbox.models import (
    HOLDING_STATUSES,
    RUNNING_KEY_INDEX,
    DeliveryStatus,
    OutboxDelivery,
    OutboxEvent,
    idempotency_key,
)

DELIVERIES = cast(Table, OutboxDelivery.__table__)
EVENTS = cast(Table, OutboxEvent.__table__)
TRACEBACK_LIMIT = 16_000
"""Characters of one traceback kept in the error history (the end, where the raise is)."""

_PENDING, _RUNNING = DeliveryStatus.PENDING.value, DeliveryStatus.RUNNING.value


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
    payload: str
    """The stored JSON, undecoded: ``codec.rebuild`` decodes it, so a payload that cannot be
    decoded fails its own delivery (a dead letter), never the claim of every delivery."""

    @property
    def idempotency_key(self) -> str:
        """``"<event id>:<listener id>"``: stable across retries and replays."""
        return idempotency_key(self.event_id, self.listener_id)


_PG_CLAIM = text(
    """
WITH cand AS MATERIALIZED (
    SELECT d.id FROM outbox_deliveries d
    WHERE d.status = 'pending' AND d.available_at <= :now AND d.listener_id = ANY(:listeners)
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
    RETURNING d.id, d.listener_id, d.attempts, d.event_id
)
SELECT c.id, c.listener_id, c.attempts, e.id AS event_id, e.name, e.version,
       e.organization_id, e.correlation_id, e.causation_id, e.occurred_at,
       e.payload::text AS payload
FROM claimed c JOIN outbox_events e ON e.id = c.event_id
ORDER BY c.id
"""
)

logger = logging.getLogger(__name__)

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
        .where(cand.c.status == _PENDING, cand.c.available_at <= params["now"])
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
            DELIVERIES.c.id, DELIVERIES.c.listener_id, DELIVERIES.c.attempts, DELIVERIES.c.event_id
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
        payload=row["payload"],
    )


def _fenced(delivery_id: int, token: uuid.UUID) -> Any:
    return (
        update(DELIVERIES)
        .where(DELIVERIES.c.id == delivery_id, DELIVERIES.c.lease_token == token)
        .where(DELIVERIES.c.status == _RUNNING)
    )


def _rowcount(result: Any) -> int:
    return int(cast(CursorResult[Any], result).rowcount)


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


async def record_failure(
    database: Database,
    claimed: Claim,
    *,
    entry: dict[str, Any],
    dead: bool,
    available_at: datetime,
    now: datetime,
) -> bool:
    """Append ``entry`` to the error history and schedule a retry (or make a dead letter).

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
                status=DeliveryStatus.DEAD.value if dead else _PENDING,
                available_at=available_at,
                errors=[*errors, entry],
                last_error=f"{entry['type']}: {entry['message']}"[:2000],
                lease_until=None,
                lease_token=None,
                updated_at=now,
                completed_at=now if dead else None,
            )
        )
        return _rowcount(result) == 1


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


async def heartbeat(database: Database, tokens: Sequence[uuid.UUID], *, until: datetime) -> int:
    """Extend the leases of the deliveries held under ``tokens`` to ``until``."""
    if not tokens:
        return 0
    async with database.engine.begin() as conn:
        result = await conn.execute(
            update(DELIVERIES)
            .where(DELIVERIES.c.status == _RUNNING, DELIVERIES.c.lease_token.in_(tokens))
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
            policy = policy_of(row.listener_id)
            entry = error_entry(
                attempt=row.attempts,
                at=now,
                exc=None,
                kind="LeaseExpired",
                message=f"the lease of worker {row.worker} expired: it died or stalled",
            )
            dead = row.attempts >= policy.max_attempts
            delay = timedelta(seconds=policy.delay(row.attempts, rand()))
            result = await session.execute(
                _fenced(row.id, row.lease_token).values(
                    status=DeliveryStatus.DEAD.value if dead else _PENDING,
                    available_at=now + delay,
                    errors=[*row.errors, entry],
                    last_error=f"{entry['type']}: {entry['message']}",
                    lease_until=None,
                    lease_token=None,
                    updated_at=now,
                    completed_at=now if dead else None,
                )
            )
            rescued += _rowcount(result)
    return rescued

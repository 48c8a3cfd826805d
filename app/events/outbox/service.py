"""Operating the outbox: list, inspect, retry and discard deliveries; replay history; prune it.

The CLI (``python -m app events ...``) and the admin API call these. Functions take the session
first and never commit: the caller's scope does.
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import Database
from app.core.errors import AppError, Conflict, NotFound
from app.events.app_emitter import AppEmitter
from app.events.outbox import repository
from app.events.outbox.models import DeliveryStatus, idempotency_key
from app.events.outbox.schemas import DeliveryDetail, DeliveryPage, DeliverySummary, ReplayResult
from app.events.patterns import is_pattern, matches

__all__ = [
    "DeliveryNotDiscardable",
    "DeliveryNotFound",
    "DeliveryNotRetryable",
    "DeliveryStateChanged",
    "InvalidPattern",
    "UnknownListener",
    "discard_delivery",
    "get_delivery",
    "list_deliveries",
    "prune_history",
    "replay",
    "retry_delivery",
]

logger = logging.getLogger("app.events.outbox")


class DeliveryNotFound(NotFound):
    code = "delivery_not_found"
    detail = "No delivery has this id."


class DeliveryNotRetryable(Conflict):
    code = "delivery_not_retryable"
    detail = "Only a dead, discarded or pending delivery can be retried."


class DeliveryNotDiscardable(Conflict):
    code = "delivery_not_discardable"
    detail = "Only a dead or pending delivery can be discarded."


class DeliveryStateChanged(Conflict):
    code = "delivery_state_changed"
    detail = "The delivery changed state meanwhile (a relay or another admin); read it and retry."


class UnknownListener(AppError):
    status = 422
    code = "unknown_listener"
    detail = "No durable listener has this id."


class InvalidPattern(AppError):
    status = 422
    code = "invalid_pattern"
    detail = "The pattern matches no event the listener receives."


def _max_attempts(emitter: AppEmitter | None, listener_id: str) -> int | None:
    sub = emitter.durable_listener(listener_id) if emitter is not None else None
    policy = sub.spec.retry if sub is not None else None
    return policy.max_attempts if policy is not None else None


def _summary(row: Row[Any], emitter: AppEmitter | None) -> dict[str, Any]:
    values = dict(row._mapping)
    values["max_attempts"] = _max_attempts(emitter, values["listener_id"])
    values["idempotency_key"] = idempotency_key(values["event_id"], values["listener_id"])
    return values


async def list_deliveries(
    session: AsyncSession,
    *,
    status: DeliveryStatus | str | None = None,
    listener_id: str | None = None,
    event_name: str | None = None,
    organization_id: uuid.UUID | None = None,
    limit: int = 50,
    offset: int = 0,
    emitter: AppEmitter | None = None,
) -> DeliveryPage:
    """Return one page of deliveries, newest first, optionally filtered.

    Args:
        session: the caller's session.
        status: only deliveries in this state (``dead`` lists the dead letters).
        listener_id: only this durable listener's deliveries.
        event_name: only deliveries of this event name.
        organization_id: only this tenant's deliveries.
        limit: the page size.
        offset: how many to skip.
        emitter: the emitter whose listeners' ``max_attempts`` to show.

    Returns:
        The page and the total count of matching deliveries.
    """
    total, rows = await repository.page_deliveries(
        session,
        status=DeliveryStatus(status).value if status is not None else None,
        listener_id=listener_id,
        event_name=event_name,
        organization_id=organization_id,
        limit=limit,
        offset=offset,
    )
    items = [DeliverySummary.model_validate(_summary(row, emitter)) for row in rows]
    return DeliveryPage(items=items, total=total, limit=limit, offset=offset)


async def _row(
    session: AsyncSession, delivery_id: int, organization_id: uuid.UUID | None
) -> Row[Any]:
    row = await repository.delivery_row(session, delivery_id, organization_id=organization_id)
    if row is None:
        raise DeliveryNotFound(f"no delivery has the id {delivery_id}")
    return row


async def get_delivery(
    session: AsyncSession,
    delivery_id: int,
    *,
    organization_id: uuid.UUID | None = None,
    emitter: AppEmitter | None = None,
) -> DeliveryDetail:
    """Return a delivery with its event payload and full error history.

    Raises:
        DeliveryNotFound: no delivery has this id (in this organisation).
    """
    row = await _row(session, delivery_id, organization_id)
    values = _summary(row, emitter)
    values["payload"] = _decoded(values["payload"])
    return DeliveryDetail.model_validate(values)


def _decoded(stored: str) -> Any:
    """The stored payload as JSON, or its raw text when it cannot be decoded (a dead letter)."""
    try:
        return json.loads(stored)
    except (ValueError, RecursionError):
        return stored


async def retry_delivery(
    session: AsyncSession,
    delivery_id: int,
    *,
    now: datetime,
    organization_id: uuid.UUID | None = None,
    emitter: AppEmitter | None = None,
) -> DeliveryDetail:
    """Queue a dead, discarded or pending delivery now, with a fresh attempt budget.

    The error history is kept. Relays on PostgreSQL are woken when the caller commits. With
    an ordering key, it runs before the later deliveries of its key that have not run yet, once
    no delivery of its key is running.

    Raises:
        DeliveryNotFound: no delivery has this id (in this organisation).
        DeliveryNotRetryable: the delivery is running or done (replay it instead).
        DeliveryStateChanged: its state changed between the read and the update.
    """
    row = await _row(session, delivery_id, organization_id)
    retryable = (DeliveryStatus.DEAD, DeliveryStatus.DISCARDED, DeliveryStatus.PENDING)
    if row.status not in retryable:
        raise DeliveryNotRetryable(f"delivery {delivery_id} is {row.status}")
    changed = await repository.requeue(session, delivery_id, seen=row.status, now=now)
    _require_changed(changed, delivery_id, row.status)
    await _release_held(session, row)
    await repository.notify_relays(session)
    return await get_delivery(session, delivery_id, emitter=emitter)


async def discard_delivery(
    session: AsyncSession,
    delivery_id: int,
    *,
    now: datetime,
    organization_id: uuid.UUID | None = None,
    emitter: AppEmitter | None = None,
) -> DeliveryDetail:
    """Give up on a dead or pending delivery (it unblocks its ordering key).

    Raises:
        DeliveryNotFound: no delivery has this id (in this organisation).
        DeliveryNotDiscardable: the delivery is running, done or already discarded.
        DeliveryStateChanged: its state changed between the read and the update.
    """
    row = await _row(session, delivery_id, organization_id)
    if row.status not in (DeliveryStatus.DEAD, DeliveryStatus.PENDING):
        raise DeliveryNotDiscardable(f"delivery {delivery_id} is {row.status}")
    changed = await repository.discard(session, delivery_id, seen=row.status, now=now)
    _require_changed(changed, delivery_id, row.status)
    await _release_held(session, row)
    return await get_delivery(session, delivery_id, emitter=emitter)


async def _release_held(session: AsyncSession, row: Row[Any]) -> None:
    """A dead letter that is retried or discarded no longer holds back its key."""
    if row.status == DeliveryStatus.DEAD and row.ordering_key is not None:
        await repository.release_held(
            session, listener_id=row.listener_id, ordering_key=row.ordering_key
        )


def _require_changed(changed: bool, delivery_id: int, seen: str) -> None:
    """The status-guarded update must have changed the row, or someone changed it first."""
    if not changed:
        raise DeliveryStateChanged(
            f"delivery {delivery_id} is no longer {seen}; it changed state meanwhile"
        )


async def replay(
    session: AsyncSession,
    *,
    emitter: AppEmitter,
    pattern: str,
    listener_id: str,
    since: datetime,
    until: datetime | None = None,
    now: datetime,
    organization_id: uuid.UUID | None = None,
) -> ReplayResult:
    """Queue stored events matching ``pattern`` since ``since`` for one durable listener.

    This is how a new listener is backfilled. Only events the listener subscribes to are
    queued, and an event that already has a pending, running or dead delivery for it is skipped
    (retry a dead letter instead of replaying its event, or it would be delivered twice).
    The history holds the events that had at least one durable listener when emitted.

    Args:
        session: the caller's session.
        emitter: the emitter whose durable listener receives the replay.
        pattern: an event name or pattern (``user.*``).
        listener_id: the durable listener's id.
        since: the oldest emission time to replay (inclusive).
        until: the newest emission time to replay (exclusive), or everything after ``since``.
        now: when the new deliveries become due.
        organization_id: only this tenant's events (an admin's replay); ``None`` for all.

    Returns:
        What was queued.

    Raises:
        UnknownListener: no durable listener has this id.
        InvalidPattern: the pattern cannot match any event the listener receives.
    """
    sub = emitter.durable_listener(listener_id)
    if sub is None:
        known = ", ".join(sorted(emitter.durable_listeners())) or "none"
        raise UnknownListener(f"no durable listener {listener_id!r} (known: {known})")
    if "*" in pattern and not is_pattern(pattern):
        raise InvalidPattern(f"{pattern!r} is not a valid event name or pattern")
    stored = await repository.stored_event_names(
        session, since=since, until=until, organization_id=organization_id
    )
    names = sorted(n for n in stored if matches(pattern, n) and matches(sub.event, n))
    if not names:
        return ReplayResult(listener_id=listener_id, event_names=[], queued=0)
    queued = await repository.queue_replay(
        session,
        listener_id=listener_id,
        names=names,
        since=since,
        until=until,
        organization_id=organization_id,
        now=now,
    )
    await repository.notify_relays(session)
    logger.info("replayed %d event(s) of %s to %s", queued, names, listener_id)
    return ReplayResult(listener_id=listener_id, event_names=names, queued=queued)


async def prune_history(
    database: Database,
    *,
    retention: timedelta,
    now: datetime,
    batch_size: int = 1000,
) -> int:
    """Delete events older than ``retention`` whose deliveries are all done or discarded.

    Dead letters and unfinished deliveries keep their event. Each batch commits on its own,
    so pruning never holds long locks. The relay calls this every
    ``EVENTS_PRUNE_INTERVAL_SECONDS``; a scheduler job may call it instead.

    Args:
        database: where the outbox lives.
        retention: how long history is kept.
        now: the current time.
        batch_size: events deleted per transaction.

    Returns:
        The number of events deleted (their deliveries go with them).
    """
    cutoff = now - retention
    deleted = 0
    while True:
        async with database.sessionmaker() as session, session.begin():
            batch = await repository.prune_batch(session, cutoff=cutoff, limit=batch_size)
        if not batch:
            break
        deleted += batch
    if deleted:
        logger.info("pruned %d event(s) older than %s", deleted, cutoff.isoformat())
    return deleted

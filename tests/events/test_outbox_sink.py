"""The outbox write: events and deliveries commit or roll back with the emitting transaction."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from app.core.context import correlation_id_var
from app.core.db import Database, session_scope, utcnow
from app.events import RetryPolicy, listener
from app.events.outbox import OutboxDelivery, OutboxEvent, prune_history
from app.events.retry import RetryDecision
from tests.events.outbox_support import (
    ORG,
    OtherProbeEmitted,
    ProbeEmitted,
    ready_emitter,
    record_probe,
    scalar,
)


@listener("test.outbox.*", delivery="durable", listener_id="tests.outbox.audit")
async def audit_everything(event: ProbeEmitted | OtherProbeEmitted) -> None:
    """A second durable listener, on a pattern."""


async def _counts(db: Database) -> tuple[int, int]:
    events = await scalar(db, "SELECT count(*) FROM outbox_events")
    deliveries = await scalar(db, "SELECT count(*) FROM outbox_deliveries")
    return int(events), int(deliveries)


async def test_a_rollback_leaves_no_event_and_no_delivery(db: Database) -> None:
    emitter = ready_emitter(db, record_probe, audit_everything)
    with pytest.raises(RuntimeError, match="business failed"):
        async with session_scope():
            emitter.emit(ProbeEmitted(organization_id=ORG, n=1))
            await emitter.emit_async(ProbeEmitted(organization_id=ORG, n=2))
            raise RuntimeError("business failed")
    assert await _counts(db) == (0, 0)


async def test_a_commit_writes_the_event_and_one_delivery_per_durable_listener(
    db: Database,
) -> None:
    emitter = ready_emitter(db, record_probe, audit_everything)
    token = correlation_id_var.set("req-42")
    try:
        async with session_scope():
            emitter.emit(ProbeEmitted(organization_id=ORG, n=7, key="user-1"))
    finally:
        correlation_id_var.reset(token)
    async with session_scope() as session:
        stored = (await session.scalars(select(OutboxEvent))).one()
        deliveries = (
            await session.scalars(select(OutboxDelivery).order_by(OutboxDelivery.listener_id))
        ).all()
    assert stored.name == "test.outbox.probe"
    assert stored.payload == {
        "organization_id": str(ORG),
        "n": 7,
        "key": "user-1",
        "dedupe": None,
        "due": None,
    }
    assert stored.organization_id == ORG
    assert stored.correlation_id == "req-42"
    assert stored.ordering_key == "user-1"
    assert stored.occurred_at.tzinfo is not None
    assert [(d.listener_id, d.status, d.attempts) for d in deliveries] == [
        ("tests.outbox.audit", "pending", 0),
        ("tests.outbox.probe", "pending", 0),
    ]
    assert {d.ordering_key for d in deliveries} == {"user-1"}
    assert deliveries[1].idempotency_key == f"{stored.id}:tests.outbox.probe"


async def test_emit_async_outside_a_transaction_writes_in_its_own(db: Database) -> None:
    emitter = ready_emitter(db, record_probe)
    await emitter.emit_async(OtherProbeEmitted(organization_id=ORG, n=1))  # no durable listener
    await emitter.emit_async(ProbeEmitted(organization_id=ORG, n=1))
    assert await _counts(db) == (1, 1)


async def test_sync_emit_outside_a_transaction_is_refused_not_lost(db: Database) -> None:
    emitter = ready_emitter(db, record_probe)
    with pytest.raises(RuntimeError, match="inside a transaction"):
        emitter.emit(ProbeEmitted(organization_id=ORG, n=1))
    assert await _counts(db) == (0, 0)


async def test_a_savepoint_rollback_drops_only_what_was_staged_inside_it(db: Database) -> None:
    emitter = ready_emitter(db, record_probe)
    async with session_scope() as session:
        emitter.emit(ProbeEmitted(organization_id=ORG, n=1))
        with pytest.raises(LookupError):
            async with session.begin_nested():
                emitter.emit(ProbeEmitted(organization_id=ORG, n=2))
                raise LookupError
        async with session.begin_nested():
            emitter.emit(ProbeEmitted(organization_id=ORG, n=3))
    async with session_scope() as session:
        payloads = (await session.scalars(select(OutboxEvent.payload))).all()
    assert sorted(p["n"] for p in payloads) == [1, 3]


async def test_many_events_in_one_transaction_keep_their_order(db: Database) -> None:
    emitter = ready_emitter(db, record_probe)
    async with session_scope():
        for n in range(200):
            emitter.emit(ProbeEmitted(organization_id=ORG, n=n, key="k"))
    async with session_scope() as session:
        rows = (
            await session.execute(
                select(OutboxEvent.payload)
                .join(OutboxDelivery, OutboxDelivery.event_id == OutboxEvent.id)
                .order_by(OutboxDelivery.id)
            )
        ).scalars()
        assert [p["n"] for p in rows] == list(range(200))


async def test_a_dedupe_key_stores_an_event_once_within_the_retention(db: Database) -> None:
    emitter = ready_emitter(db, record_probe, audit_everything)
    for _ in range(2):
        async with session_scope():
            emitter.emit(ProbeEmitted(organization_id=ORG, n=1, dedupe="sweep-10:05"))
            emitter.emit(ProbeEmitted(organization_id=ORG, n=2, dedupe="sweep-10:05"))
    await emitter.emit_async(ProbeEmitted(organization_id=ORG, n=3, dedupe="sweep-10:05"))
    assert await _counts(db) == (1, 2)
    await emitter.emit_async(ProbeEmitted(organization_id=ORG, n=4, dedupe="sweep-10:10"))
    assert await _counts(db) == (2, 4)
    await emitter.emit_async(ProbeEmitted(organization_id=ORG, n=5))
    await emitter.emit_async(ProbeEmitted(organization_id=ORG, n=6))
    assert await _counts(db) == (4, 8)

    # Past the retention (and delivered), the key is free again.
    async with session_scope() as session:
        await session.execute(update(OutboxDelivery).values(status="done"))
    pruned = await prune_history(db, retention=timedelta(days=7), now=utcnow() + timedelta(days=8))
    assert pruned == 4
    await emitter.emit_async(ProbeEmitted(organization_id=ORG, n=7, dedupe="sweep-10:05"))
    assert await _counts(db) == (1, 2)


async def test_dedupe_keys_are_scoped_by_organisation(db: Database) -> None:
    emitter = ready_emitter(db, record_probe)
    other = uuid.uuid4()
    for organization_id in (ORG, other, ORG, other):
        await emitter.emit_async(
            ProbeEmitted(organization_id=organization_id, n=1, dedupe="sweep-10:05")
        )
    assert await _counts(db) == (2, 2)  # one per organisation, not one for both


async def test_pruning_keeps_unfinished_deliveries_and_dead_letters(db: Database) -> None:
    emitter = ready_emitter(db, record_probe)
    for n in range(4):
        await emitter.emit_async(ProbeEmitted(organization_id=ORG, n=n))
    async with session_scope() as session:
        ids = (await session.scalars(select(OutboxDelivery.id).order_by(OutboxDelivery.id))).all()
        for delivery_id, status in zip(ids, ["done", "discarded", "dead", "pending"], strict=True):
            await session.execute(
                update(OutboxDelivery).where(OutboxDelivery.id == delivery_id).values(status=status)
            )
    later = utcnow() + timedelta(days=8)
    assert await prune_history(db, retention=timedelta(days=7), now=utcnow()) == 0
    assert await prune_history(db, retention=timedelta(days=7), now=later, batch_size=1) == 2
    async with session_scope() as session:
        left = (await session.scalars(select(OutboxDelivery.status))).all()
    assert sorted(left) == ["dead", "pending"]


def test_retry_policy_delays_double_with_jitter_up_to_the_cap() -> None:
    policy = RetryPolicy(max_attempts=10, base_delay=2.0, max_delay=30.0, jitter=0.5)
    assert [policy.delay(n, 0.0) for n in range(1, 7)] == [2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert policy.delay(3, 0.5) == 6.0  # 8 s, less half of the jitter's 50 %
    assert policy.delay(1000, 0.999) == pytest.approx(15.015)
    assert RetryPolicy(jitter=0).delay(2, 0.9) == 2.0
    with pytest.raises(ValueError, match="invalid retry policy"):
        RetryPolicy(jitter=1.5)


def test_retry_policy_decides_retries_and_dead_letters_in_one_place() -> None:
    """The relay (a listener raised) and the lease rescue (a worker died) share this decision."""
    policy = RetryPolicy(max_attempts=3, base_delay=2.0, max_delay=30.0, jitter=0.5)
    assert policy.decide(1, 0.0) == RetryDecision(dead=False, delay=2.0)
    assert policy.decide(2, 0.5) == RetryDecision(dead=False, delay=3.0)
    assert policy.decide(3, 0.0) == RetryDecision(dead=True, delay=8.0)  # attempts exhausted
    assert policy.decide(1, 0.0, give_up=True).dead is True  # DoNotRetry
    assert policy.decide(1, 0.9, retry_after=45.0) == RetryDecision(dead=False, delay=45.0)
    assert policy.decide(3, 0.0, retry_after=45.0).dead is True

"""The relay runs durable listeners once per delivery, retries on a schedule, keeps dead letters."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import bindparam, select, text, update

from app.core.context import correlation_id_var
from app.core.db import Database, session_scope, utcnow
from app.core.errors import TransientError
from app.events import (
    Defer,
    DoNotRetry,
    RetryAfter,
    RetryPolicy,
    current_delivery,
    current_envelope,
    get_emitter,
    listener,
)
from app.events.outbox import OutboxDelivery, OutboxEvent, Relay, RelayConfig
from app.events.outbox.service import (
    discard_delivery,
    get_delivery,
    list_deliveries,
    retry_delivery,
)
from app.events.runtime import set_emitter
from app.events.testing import run_pending
from tests.events.outbox_support import (
    ORG,
    FakeClock,
    OtherProbeEmitted,
    ProbeEmitted,
    create_probe_table,
    drop_probe_table,
    insert_probe,
    probe_rows,
    ready_emitter,
    record_probe,
    statuses,
)

FLAKY = RetryPolicy(max_attempts=4, base_delay=10.0, max_delay=25.0, jitter=0.5)
seen: list[Any] = []
failures: dict[str, list[BaseException]] = {}


@pytest.fixture
async def probe(db: Database) -> AsyncIterator[Database]:
    await create_probe_table(db)
    seen.clear()
    failures.clear()
    yield db
    await drop_probe_table(db)


def _fail_next(listener_id: str, *errors: BaseException) -> None:
    failures[listener_id] = list(errors)


@listener(ProbeEmitted, delivery="durable", listener_id="tests.flaky", retry=FLAKY)
async def flaky(event: ProbeEmitted) -> None:
    """Write a probe row, then raise the next scripted failure (rolling the row back)."""
    delivery = current_delivery()
    envelope = current_envelope()
    seen.append((delivery, envelope, correlation_id_var.get()))
    await insert_probe(event.n)
    queued = failures.get("tests.flaky")
    if queued:
        raise queued.pop(0)


@listener(ProbeEmitted, delivery="durable", listener_id="tests.chain")
async def chain(event: ProbeEmitted) -> None:
    """Emit a follow-up event from inside a durable delivery."""
    await get_emitter().emit_async(OtherProbeEmitted(organization_id=ORG, n=event.n))


@listener(OtherProbeEmitted, delivery="durable", listener_id="tests.audit.other")
async def audit_other(event: OtherProbeEmitted) -> None:
    """Receive the follow-up."""
    seen.append(event)


async def _available_at(db: Database) -> datetime:
    async with session_scope() as session:
        return (await session.scalars(select(OutboxDelivery.available_at))).one()


async def _delivery(db: Database) -> OutboxDelivery:
    async with session_scope() as session:
        return (await session.scalars(select(OutboxDelivery))).one()


async def test_a_delivery_runs_once_with_its_envelope_and_idempotency_key(probe: Database) -> None:
    emitter = ready_emitter(probe, flaky)
    token = correlation_id_var.set("req-7")
    try:
        async with session_scope():
            emitter.emit(ProbeEmitted(organization_id=ORG, n=1))
    finally:
        correlation_id_var.reset(token)
    assert await run_pending(emitter, probe) == 1
    assert await run_pending(emitter, probe) == 0
    assert await statuses(probe) == {"done": 1}
    [(delivery, envelope, correlation)] = seen
    stored = await _delivery(probe)
    assert delivery.delivery_id == stored.id
    assert delivery.attempt == 1
    assert delivery.idempotency_key == f"{stored.event_id}:tests.flaky"
    assert envelope.id == stored.event_id
    assert envelope.name == "test.outbox.probe"
    assert envelope.organization_id == ORG
    assert correlation == envelope.correlation_id == "req-7"
    assert [n for _, n in await probe_rows(probe)] == [1]
    assert current_delivery() is None


async def test_backoff_follows_the_policy_then_the_delivery_becomes_a_dead_letter(
    probe: Database,
) -> None:
    clock = FakeClock()
    rng = random.Random(4)
    draws = random.Random(4)
    emitter = ready_emitter(probe, flaky, clock=clock)
    await emitter.emit_async(ProbeEmitted(organization_id=ORG, n=1))
    _fail_next("tests.flaky", *(ValueError(f"boom {i}") for i in range(1, 5)))
    for attempt in range(1, FLAKY.max_attempts):
        failed_at = clock.now
        assert await run_pending(emitter, probe, clock=clock, rng=rng) == 1
        expected = FLAKY.delay(attempt, draws.random())
        due = await _available_at(probe)
        assert (due - failed_at).total_seconds() == pytest.approx(expected, abs=1e-3)
        # Not a moment early: just before it is due, nothing runs.
        clock.advance(expected - 0.01)
        assert await run_pending(emitter, probe, clock=clock, rng=rng) == 0
        clock.advance(0.01)
    assert await run_pending(emitter, probe, clock=clock, rng=rng) == 1
    dead = await _delivery(probe)
    assert dead.status == "dead"
    assert dead.attempts == 4
    assert [e["attempt"] for e in dead.errors] == [1, 2, 3, 4]
    assert [e["message"] for e in dead.errors] == ["boom 1", "boom 2", "boom 3", "boom 4"]
    assert {e["type"] for e in dead.errors} == {"builtins.ValueError"}
    assert all("raise queued.pop(0)" in e["traceback"] for e in dead.errors)
    assert all(datetime.fromisoformat(e["at"]).tzinfo is not None for e in dead.errors)
    assert dead.last_error == "builtins.ValueError: boom 4"
    assert await probe_rows(probe) == []  # every failed attempt's write rolled back

    # An operator retries it; this time it succeeds, once.
    async with session_scope() as session:
        await retry_delivery(session, dead.id, now=clock.now)
    assert await run_pending(emitter, probe, clock=clock, rng=rng) == 1
    done = await _delivery(probe)
    assert (done.status, done.attempts, len(done.errors)) == ("done", 1, 4)
    assert len(await probe_rows(probe)) == 1


async def test_retry_after_waits_as_long_as_asked(probe: Database) -> None:
    clock = FakeClock()
    emitter = ready_emitter(probe, flaky, clock=clock)
    await emitter.emit_async(ProbeEmitted(organization_id=ORG, n=1))
    _fail_next("tests.flaky", RetryAfter(120, "429 from Oracle"))
    start = clock.now
    await run_pending(emitter, probe, clock=clock)
    assert (await _available_at(probe) - start).total_seconds() == pytest.approx(120)
    clock.advance(119)
    assert await run_pending(emitter, probe, clock=clock) == 0
    clock.advance(1)
    assert await run_pending(emitter, probe, clock=clock) == 1
    delivered = await _delivery(probe)
    assert delivered.status == "done"
    assert delivered.errors[0]["message"] == "429 from Oracle"
    assert delivered.errors[0]["type"] == "app.events.outbox.errors.RetryAfter"


@pytest.mark.parametrize(
    ("error", "level"),
    [
        (TransientError("Oracle 503", retry_after=90), logging.INFO),
        (TransientError("Oracle down"), logging.WARNING),
    ],
    ids=["with-retry-after", "backoff"],
)
async def test_a_core_transient_error_is_retried_at_its_retry_after_in_one_line(
    probe: Database, caplog: pytest.LogCaptureFixture, error: TransientError, level: int
) -> None:
    clock = FakeClock()
    rng = random.Random(7)
    draws = random.Random(7)
    emitter = ready_emitter(probe, flaky, clock=clock)
    await emitter.emit_async(ProbeEmitted(organization_id=ORG, n=1))
    _fail_next("tests.flaky", error)
    caplog.set_level(logging.INFO, logger="app.events.outbox")
    start = clock.now
    assert await run_pending(emitter, probe, clock=clock, rng=rng) == 1
    expected = (
        error.retry_after if error.retry_after is not None else FLAKY.delay(1, draws.random())
    )
    assert (await _available_at(probe) - start).total_seconds() == pytest.approx(expected, abs=1e-3)
    waiting = await _delivery(probe)
    assert (waiting.status, waiting.attempts) == ("pending", 1)
    assert waiting.errors[0]["type"] == "app.core.errors.TransientError"
    clock.advance(expected - 0.01)
    assert await run_pending(emitter, probe, clock=clock, rng=rng) == 0
    clock.advance(0.01)
    assert await run_pending(emitter, probe, clock=clock, rng=rng) == 1
    assert (await _delivery(probe)).status == "done"
    (failed,) = [r for r in caplog.records if "failed (attempt" in r.getMessage()]
    assert (failed.levelno, failed.exc_info) == (level, None)  # one line: no stack
    assert f"TransientError: {error}" in failed.getMessage()


async def test_defer_moves_the_due_time_without_spending_an_attempt_or_warning(
    probe: Database, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    emitter = ready_emitter(probe, flaky, clock=clock)
    await emitter.emit_async(ProbeEmitted(organization_id=ORG, n=1))
    until = clock.now + timedelta(hours=8)
    _fail_next(
        "tests.flaky",
        Defer(until, "quiet hours"),
        Defer(until + timedelta(minutes=5), "still quiet"),
    )
    caplog.set_level(logging.INFO, logger="app.events.outbox")
    assert await run_pending(emitter, probe, clock=clock) == 1
    waiting = await _delivery(probe)
    assert (waiting.status, waiting.attempts, waiting.errors) == ("pending", 0, [])
    assert waiting.last_error is None
    assert waiting.available_at == until
    clock.advance(8 * 3600 - 1)
    assert await run_pending(emitter, probe, clock=clock) == 0
    clock.advance(1)
    assert await run_pending(emitter, probe, clock=clock) == 1  # deferred once more
    assert (await _delivery(probe)).attempts == 0
    clock.advance(300)
    assert await run_pending(emitter, probe, clock=clock) == 1
    delivered = await _delivery(probe)
    assert (delivered.status, delivered.attempts, delivered.errors) == ("done", 1, [])
    assert delivered.completed_at == clock.now
    assert [n for _, n in await probe_rows(probe)] == [1]
    assert [d.attempt for d, _, _ in seen] == [1, 1, 1]  # every run was a first attempt
    deferred = [r for r in caplog.records if "deferred until" in r.getMessage()]
    assert [(r.levelno, r.exc_info) for r in deferred] == [(logging.INFO, None)] * 2
    assert "quiet hours" in deferred[0].getMessage()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_an_event_delivered_later_is_written_due_then(probe: Database) -> None:
    clock = FakeClock()
    emitter = ready_emitter(probe, flaky, clock=clock)
    due = clock.now + timedelta(minutes=30)
    async with session_scope():  # staged in a transaction, written at its commit
        emitter.emit(ProbeEmitted(organization_id=ORG, n=1, due=due))
    await emitter.emit_async(ProbeEmitted(organization_id=ORG, n=2, due=due))  # on its own
    await emitter.emit_async(ProbeEmitted(organization_id=ORG, n=3, due=clock.now - timedelta(1)))
    async with session_scope() as session:
        rows = (
            await session.execute(
                select(OutboxDelivery.available_at, OutboxDelivery.attempts).order_by(
                    OutboxDelivery.id
                )
            )
        ).all()
    assert [tuple(r) for r in rows] == [(due, 0), (due, 0), (clock.now, 0)]  # never in the past
    assert await run_pending(emitter, probe, clock=clock) == 1
    clock.advance(30 * 60 - 1)
    assert await run_pending(emitter, probe, clock=clock) == 0
    clock.advance(1)
    assert await run_pending(emitter, probe, clock=clock) == 2
    assert sorted(n for _, n in await probe_rows(probe)) == [1, 2, 3]
    with pytest.raises(ValueError, match="timezone-aware"):
        await emitter.emit_async(ProbeEmitted(organization_id=ORG, n=4, due=datetime(2030, 1, 1)))


async def test_do_not_retry_makes_a_dead_letter_at_once(probe: Database) -> None:
    emitter = ready_emitter(probe, flaky)
    await emitter.emit_async(ProbeEmitted(organization_id=ORG, n=1))
    _fail_next("tests.flaky", DoNotRetry("the task was already decided"))
    await run_pending(emitter, probe)
    dead = await _delivery(probe)
    assert (dead.status, dead.attempts) == ("dead", 1)
    assert dead.last_error == "app.events.outbox.errors.DoNotRetry: the task was already decided"


async def test_malformed_payloads_become_dead_letters_and_the_relay_goes_on(
    probe: Database,
) -> None:
    emitter = ready_emitter(probe, record_probe)
    for n in range(3):
        await emitter.emit_async(ProbeEmitted(organization_id=ORG, n=n))
    async with session_scope() as session:
        ids = (await session.scalars(select(OutboxEvent.id).order_by(OutboxEvent.id))).all()
        # A contract changed under a stored event; another event's class is gone.
        await session.execute(
            update(OutboxEvent)
            .where(OutboxEvent.id == ids[0])
            .values(payload={"organization_id": str(ORG), "n": "not a number"})
        )
        await session.execute(
            update(OutboxEvent).where(OutboxEvent.id == ids[1]).values(name="test.outbox.gone")
        )
    assert await run_pending(emitter, probe) == 3
    async with session_scope() as session:
        rows = (
            await session.execute(
                select(OutboxDelivery.event_id, OutboxDelivery.status, OutboxDelivery.last_error)
            )
        ).all()
    by_event = {row.event_id: row for row in rows}
    bad_payload, gone, fine = (by_event[i] for i in ids)
    assert bad_payload.status == "dead"
    assert bad_payload.last_error.startswith(
        "app.events.outbox.errors.PayloadInvalid: the stored payload of 'test.outbox.probe' "
        "(version 1) does not validate against tests.events.outbox_support.ProbeEmitted"
    )
    assert "n\n  Input should be a valid integer" in bad_payload.last_error
    assert gone.status == "dead"
    assert "no Event class declares 'test.outbox.gone'" in gone.last_error
    assert fine.status == "done"
    assert [n for _, n in await probe_rows(probe)] == [2]


NOT_JSON = "{not json"
TOO_DEEP = "[" * 5000 + "]" * 5000
"""Valid JSON to PostgreSQL's jsonb, but nested too deep for Python's decoder."""


@pytest.mark.parametrize("stored", [NOT_JSON, TOO_DEEP], ids=["not-json", "too-deep"])
async def test_a_stored_payload_that_cannot_be_decoded_is_a_dead_letter_not_a_stuck_relay(
    probe: Database, stored: str
) -> None:
    if stored == NOT_JSON and not probe.is_sqlite:
        pytest.skip("PostgreSQL's jsonb column refuses text that is not JSON")
    emitter = ready_emitter(probe, record_probe)
    for n in range(3):
        await emitter.emit_async(ProbeEmitted(organization_id=ORG, n=n))
    async with session_scope() as session:
        bad_id = (await session.scalars(select(OutboxEvent.id).order_by(OutboxEvent.id))).first()
    value = ":payload" if probe.is_sqlite else "CAST(:payload AS jsonb)"
    corrupt = text(f"UPDATE outbox_events SET payload = {value} WHERE id = :id").bindparams(
        bindparam("id", type_=OutboxEvent.__table__.c.id.type)
    )
    async with probe.engine.begin() as conn:
        await conn.execute(corrupt, {"payload": stored, "id": bad_id})
    assert await run_pending(emitter, probe) == 3
    assert await statuses(probe) == {"dead": 1, "done": 2}
    assert sorted(n for _, n in await probe_rows(probe)) == [1, 2]
    async with session_scope() as session:
        bad = (
            await session.scalars(select(OutboxDelivery).where(OutboxDelivery.event_id == bad_id))
        ).one()
    assert bad.status == "dead"
    assert bad.last_error is not None
    assert bad.last_error.startswith(
        "app.events.outbox.errors.PayloadInvalid: the stored payload of 'test.outbox.probe' "
        "(version 1) cannot be decoded as JSON: "
    )
    async with session_scope() as session:  # an operator can still see and discard it
        assert (await list_deliveries(session, status="dead")).total == 1
        assert (await get_delivery(session, bad.id)).payload == stored
        discarded = await discard_delivery(session, bad.id, now=utcnow())
    assert discarded.status == "discarded"


async def test_events_emitted_by_a_durable_listener_commit_with_its_delivery(
    probe: Database,
) -> None:
    emitter = ready_emitter(probe, chain, audit_other)
    set_emitter(emitter)
    try:
        await emitter.emit_async(ProbeEmitted(organization_id=ORG, n=5))
        assert await run_pending(emitter, probe) == 2  # chain, then audit of its follow-up
    finally:
        set_emitter(None)
    async with session_scope() as session:
        events = (await session.scalars(select(OutboxEvent).order_by(OutboxEvent.name))).all()
    other, first = events
    assert other.name == "test.outbox.other"
    assert other.causation_id == first.id
    assert other.correlation_id == first.correlation_id
    assert await statuses(probe) == {"done": 2}


async def test_a_lost_lease_rolls_back_the_stalled_attempt(probe: Database) -> None:
    """A worker that stalls past its lease cannot complete: its writes roll back."""
    clock = FakeClock()
    release = asyncio.Event()
    calls = 0

    @listener(ProbeEmitted, delivery="durable", listener_id="tests.stall", retry=FLAKY)
    async def stall(event: ProbeEmitted) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            await release.wait()  # the first attempt stalls
        await insert_probe(event.n)

    emitter = ready_emitter(probe, stall, clock=clock)
    config = RelayConfig(lease_seconds=30, listen=False)
    first = Relay(emitter, probe, config, clock=clock, worker="first")
    second = Relay(emitter, probe, config, clock=clock, worker="second", rng=random.Random(1))
    await emitter.emit_async(ProbeEmitted(organization_id=ORG, n=1))
    stalled = asyncio.create_task(first.run_once())
    while calls == 0:
        await asyncio.sleep(0.01)
    clock.advance(31)  # the lease expires; the second relay rescues the delivery
    assert await second.run_once() == 0
    rescued = await _delivery(probe)
    assert (rescued.status, rescued.errors[0]["type"]) == ("pending", "LeaseExpired")
    assert "worker first" in rescued.errors[0]["message"]
    clock.advance(FLAKY.max_delay)
    assert await second.run_once() == 1
    release.set()
    await stalled
    done = await _delivery(probe)
    assert (done.status, done.attempts, done.worker) == ("done", 2, "second")
    assert [n for _, n in await probe_rows(probe)] == [1]  # once, not twice


async def test_only_deliveries_of_known_listeners_are_claimed(probe: Database) -> None:
    emitter = ready_emitter(probe, record_probe, flaky)
    await emitter.emit_async(ProbeEmitted(organization_id=ORG, n=1))
    older_process = ready_emitter(probe, record_probe)  # a relay not yet deployed with "flaky"
    assert await run_pending(older_process, probe) == 1
    assert await statuses(probe) == {"done": 1, "pending": 1}
    async with probe.engine.connect() as conn:
        pending = (
            await conn.execute(
                text("SELECT listener_id FROM outbox_deliveries WHERE status = 'pending'")
            )
        ).scalar()
    assert pending == "tests.flaky"

"""The relay as a service: ordering keys, wake-ups, graceful stop, the in-process relay."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import timedelta

import pytest
from fastapi import FastAPI
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from app.core.db import Database, session_scope, utcnow
from app.core.settings import DatabaseSettings, Settings
from app.events import DoNotRetry, RetryPolicy, listener
from app.events.outbox import OutboxDelivery, Relay, RelayConfig, repository
from app.events.outbox.service import discard_delivery, retry_delivery
from tests.events.outbox_support import (
    ORG,
    FakeClock,
    ProbeEmitted,
    create_probe_table,
    drop_probe_table,
    probe_rows,
    ready_emitter,
    statuses,
)

spans: list[tuple[str | None, int, float, float]] = []
FAST = RelayConfig(concurrency=6, poll_min_seconds=0.01, poll_max_seconds=0.05, listen=False)


@listener(ProbeEmitted, delivery="durable", listener_id="tests.timed")
async def timed(event: ProbeEmitted) -> None:
    """Record when each delivery ran."""
    start = time.monotonic()
    await asyncio.sleep(0.02)
    spans.append((event.key, event.n, start, time.monotonic()))


@pytest.fixture
def fresh() -> None:
    spans.clear()


async def _until(predicate: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def _all_done(db: Database, total: int) -> bool:
    return (await statuses(db)).get("done", 0) == total


@pytest.mark.usefixtures("fresh")
async def test_ordering_keys_serialise_per_key_while_keys_run_in_parallel(db: Database) -> None:
    emitter = ready_emitter(db, timed)
    async with session_scope():
        for n in range(5):
            for key in ("alice", "bob", None):
                emitter.emit(ProbeEmitted(organization_id=ORG, n=n, key=key))
    relay = Relay(emitter, db, FAST)
    await relay.start()
    try:
        await _until(lambda: _all_done(db, 15))
    finally:
        await relay.stop()
    for key in ("alice", "bob"):
        runs = sorted((s for s in spans if s[0] == key), key=lambda s: s[2])
        assert [n for _, n, _, _ in runs] == [0, 1, 2, 3, 4], key
        for before, after in itertools.pairwise(runs):
            assert before[3] <= after[2], f"{key}: two deliveries overlapped"
    alice = [s for s in spans if s[0] == "alice"]
    bob = [s for s in spans if s[0] == "bob"]
    overlapping = any(a[2] < b[3] and b[2] < a[3] for a in alice for b in bob)
    assert overlapping, "keys alice and bob never ran in parallel"


async def test_a_failing_delivery_holds_back_its_key_only(db: Database) -> None:
    clock = FakeClock()
    ran: list[tuple[str | None, int]] = []
    policy = RetryPolicy(max_attempts=3, base_delay=60, max_delay=60, jitter=0)

    @listener(ProbeEmitted, delivery="durable", listener_id="tests.strict", retry=policy)
    async def strict(event: ProbeEmitted) -> None:
        if (event.key, event.n) == ("alice", 0) and ("alice-failed", 0) not in ran:
            ran.append(("alice-failed", 0))
            raise ConnectionError("Oracle is down")
        ran.append((event.key, event.n))

    emitter = ready_emitter(db, strict, clock=clock)
    async with session_scope():
        for n in range(2):
            for key in ("alice", "bob"):
                emitter.emit(ProbeEmitted(organization_id=ORG, n=n, key=key))
    relay = Relay(emitter, db, RelayConfig(listen=False), clock=clock)
    await relay.run_until_idle()
    # alice 0 failed, so alice 1 waits for it; bob's deliveries are not held back.
    assert sorted(ran, key=str) == [("alice-failed", 0), ("bob", 0), ("bob", 1)]
    assert ran.index(("bob", 0)) < ran.index(("bob", 1))
    clock.advance(60)
    await relay.run_until_idle()
    assert ran[3:] == [("alice", 0), ("alice", 1)]


async def _ids(db: Database, key: str) -> list[int]:
    async with session_scope() as session:
        query = select(OutboxDelivery.id).where(OutboxDelivery.ordering_key == key)
        return list((await session.scalars(query.order_by(OutboxDelivery.id))).all())


@pytest.mark.parametrize("resolve", ["retry", "discard"])
async def test_a_dead_letter_holds_back_its_key_until_it_is_retried_or_discarded(
    db: Database, resolve: str
) -> None:
    ran: list[tuple[str | None, int]] = []
    healed = False

    @listener(ProbeEmitted, delivery="durable", listener_id="tests.ordered")
    async def ordered(event: ProbeEmitted) -> None:
        if (event.key, event.n) == ("alice", 0) and not healed:
            raise DoNotRetry("the record is not there yet")
        ran.append((event.key, event.n))

    emitter = ready_emitter(db, ordered)
    async with session_scope():
        for n in range(3):
            for key in ("alice", "bob"):
                emitter.emit(ProbeEmitted(organization_id=ORG, n=n, key=key))
    relay = Relay(emitter, db, RelayConfig(listen=False))
    await relay.run_until_idle()
    # alice 0 is a dead letter: alice 1 and 2 wait behind it; bob's deliveries do not.
    assert ran == [("bob", 0), ("bob", 1), ("bob", 2)]
    assert await statuses(db) == {"dead": 1, "done": 3, "pending": 2}
    # They are marked held (the claim's index skips them), as is what comes after the dead
    # letter; another listener's delivery of the same key is not.
    await emitter.emit_async(ProbeEmitted(organization_id=ORG, n=3, key="alice"))
    assert await _held(db, "alice") == {0: False, 1: True, 2: True, 3: True}
    dead = (await _ids(db, "alice"))[0]
    async with session_scope() as session:
        if resolve == "retry":
            healed = True
            await retry_delivery(session, dead, now=utcnow())
        else:
            await discard_delivery(session, dead, now=utcnow())
    assert await _held(db, "alice") == {0: False, 1: False, 2: False, 3: False}
    await relay.run_until_idle()
    retried = [("alice", 0)] if resolve == "retry" else []
    assert ran[3:] == [*retried, ("alice", 1), ("alice", 2), ("alice", 3)]


async def _held(db: Database, key: str) -> dict[int, bool]:
    async with session_scope() as session:
        rows = await session.execute(
            select(OutboxDelivery.id, OutboxDelivery.held).where(OutboxDelivery.ordering_key == key)
        )
        return {n: bool(held) for n, (_, held) in enumerate(sorted(rows.all()))}


async def _claim(db: Database, listener_id: str) -> list[repository.Claim]:
    now = utcnow()
    return await repository.claim(
        db,
        listeners=[listener_id],
        limit=10,
        now=now,
        lease_until=now + timedelta(seconds=60),
        worker="test",
    )


async def test_a_retried_delivery_waits_while_a_later_one_of_its_key_runs(db: Database) -> None:
    emitter = ready_emitter(db, timed)
    async with session_scope():
        for n in range(2):
            emitter.emit(ProbeEmitted(organization_id=ORG, n=n, key="alice"))
    first, second = await _ids(db, "alice")
    async with session_scope() as session:  # an operator gives up on the first...
        await discard_delivery(session, first, now=utcnow())
    [running] = await _claim(db, "tests.timed")
    assert running.id == second
    async with session_scope() as session:  # ...then retries it while the second runs
        await retry_delivery(session, first, now=utcnow())
    assert await _claim(db, "tests.timed") == []  # never two deliveries of one key at once
    async with db.sessionmaker() as session, session.begin():
        assert await repository.complete(session, running, now=utcnow())
    assert [c.id for c in await _claim(db, "tests.timed")] == [first]


async def test_the_database_refuses_a_second_running_delivery_of_one_key(db: Database) -> None:
    emitter = ready_emitter(db, timed)
    async with session_scope():
        for n in range(2):
            emitter.emit(ProbeEmitted(organization_id=ORG, n=n, key="alice"))
        emitter.emit(ProbeEmitted(organization_id=ORG, n=2, key="bob"))
    first, second = await _ids(db, "alice")
    [bob] = await _ids(db, "bob")
    start = update(OutboxDelivery).values(status="running")
    async with db.sessionmaker() as session, session.begin():
        await session.execute(start.where(OutboxDelivery.id.in_([first, bob])))
    with pytest.raises(IntegrityError) as refused:
        async with db.sessionmaker() as session, session.begin():
            await session.execute(start.where(OutboxDelivery.id == second))
    assert repository.lost_key_race(refused.value)


async def test_a_claim_that_loses_an_ordering_key_race_claims_again(
    db: Database, is_postgres: bool
) -> None:
    if not is_postgres:
        pytest.skip("SQLite serialises writers: two claims never overlap")
    emitter = ready_emitter(db, timed)
    async with session_scope():
        for n in range(2):
            emitter.emit(ProbeEmitted(organization_id=ORG, n=n, key="alice"))
    first, second = await _ids(db, "alice")
    async with session_scope() as session:
        await discard_delivery(session, first, now=utcnow())
    async with db.engine.connect() as rival:
        # Another relay starts the second delivery but has not committed yet...
        await rival.execute(
            update(OutboxDelivery).where(OutboxDelivery.id == second).values(status="running")
        )
        async with session_scope() as session:  # ...while an operator retries the first.
            await retry_delivery(session, first, now=utcnow())
        claiming = asyncio.create_task(_claim(db, "tests.timed"))
        await asyncio.sleep(0.3)  # the claim picked the first and waits on the rival's index entry
        assert not claiming.done()
        await rival.commit()
    assert await claiming == []  # it lost, claimed again, and now sees the second running
    assert await statuses(db) == {"pending": 1, "running": 1}


@pytest.mark.usefixtures("fresh")
async def test_a_local_commit_wakes_an_idle_relay_at_once(db: Database) -> None:
    emitter = ready_emitter(db, timed)
    relay = Relay(emitter, db, RelayConfig(poll_min_seconds=30, poll_max_seconds=30, listen=False))
    assert emitter.durable_sink is not None
    emitter.durable_sink.add_waker(relay.wake)  # type: ignore[attr-defined]
    await relay.start()
    try:
        await asyncio.sleep(0.1)  # idle: the next poll is 30 s away
        async with session_scope():
            emitter.emit(ProbeEmitted(organization_id=ORG, n=1))
        await _until(lambda: _all_done(db, 1), timeout=3)
    finally:
        await relay.stop()


@pytest.mark.usefixtures("fresh")
async def test_notify_wakes_an_idle_relay_of_another_process(
    db: Database, is_postgres: bool, settings: Settings
) -> None:
    if not is_postgres:
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    relay_db = Database(DatabaseSettings(url=settings.database.url))  # its own pool
    relay = Relay(
        ready_emitter(relay_db, timed),
        relay_db,
        RelayConfig(poll_min_seconds=30, poll_max_seconds=30),
    )
    await relay.start()
    try:
        await asyncio.sleep(0.2)
        started = time.monotonic()
        await ready_emitter(db, timed).emit_async(ProbeEmitted(organization_id=ORG, n=1))
        await _until(lambda: _all_done(db, 1), timeout=3)
        assert time.monotonic() - started < 1.0
    finally:
        await relay.stop()
        await relay_db.dispose()


async def test_stop_finishes_running_deliveries_and_releases_what_outlives_the_timeout(
    db: Database,
) -> None:
    gate = asyncio.Event()
    started: list[int] = []

    @listener(ProbeEmitted, delivery="durable", listener_id="tests.slow")
    async def slow(event: ProbeEmitted) -> None:
        started.append(event.n)
        if event.n == 1:
            await asyncio.sleep(3600)  # never finishes by itself
        await gate.wait()

    emitter = ready_emitter(db, slow)
    async with session_scope():
        emitter.emit(ProbeEmitted(organization_id=ORG, n=0))
        emitter.emit(ProbeEmitted(organization_id=ORG, n=1))
    relay = Relay(emitter, db, FAST)
    await relay.start()
    while len(started) < 2:
        await asyncio.sleep(0.01)
    asyncio.get_running_loop().call_later(0.1, gate.set)
    await relay.stop(timeout=0.5)
    async with session_scope() as session:
        rows = (await session.execute(select(OutboxDelivery).order_by(OutboxDelivery.id))).scalars()
        state = [(d.status, d.attempts, d.lease_token) for d in rows]
    assert state == [("done", 1, None), ("pending", 0, None)]  # released, attempt not counted


async def test_the_api_process_runs_the_relay_in_process(
    monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    monkeypatch.setenv("EVENTS_EXTRA_LISTENERS", "tests.events.outbox_support:listeners")
    monkeypatch.setenv("EVENTS_RELAY_POLL_MAX_SECONDS", "0.2")
    await _run_app_and_emit(expect_delivered=True)
    monkeypatch.setenv("EVENTS_RELAY_ENABLED", "false")
    await _run_app_and_emit(expect_delivered=False)


async def _run_app_and_emit(*, expect_delivered: bool) -> None:
    from app.core.settings import get_settings, reset_settings
    from app.main import create_app

    reset_settings()
    app = create_app(get_settings())
    async with _lifespan(app):
        db: Database = app.state.database
        await create_probe_table(db)
        try:
            await app.state.emitter.emit_async(ProbeEmitted(organization_id=ORG, n=1))
            if expect_delivered:
                await _until(lambda: _all_done(db, 1), timeout=5)
                assert len(await probe_rows(db)) == 1
            else:
                await asyncio.sleep(0.3)
                assert await statuses(db) == {"pending": 1}
        finally:
            await drop_probe_table(db)
            async with db.engine.begin() as conn:
                await conn.exec_driver_sql("DELETE FROM outbox_deliveries")
                await conn.exec_driver_sql("DELETE FROM outbox_events")
    reset_settings()


def _lifespan(app: FastAPI) -> AbstractAsyncContextManager[object]:
    return app.router.lifespan_context(app)


def test_relay_settings_are_checked_and_extra_listeners_are_refused_in_prod() -> None:
    from pydantic import ValidationError

    from app.core.settings import AppSettings, Environment, EventsSettings

    with pytest.raises(ValidationError, match="HEARTBEAT_SECONDS must be below the lease"):
        EventsSettings(relay_lease_seconds=10, relay_heartbeat_seconds=10)
    with pytest.raises(ValidationError, match="POLL_MAX_SECONDS is below the minimum"):
        EventsSettings(relay_poll_min_seconds=2, relay_poll_max_seconds=1)
    prod = Settings(
        app=AppSettings(env=Environment.PROD),
        events=EventsSettings(extra_listeners="tests.events.outbox_support:listeners"),
    )
    assert "EVENTS_EXTRA_LISTENERS is set" in prod.insecure_for_production()
    config = RelayConfig.from_settings(EventsSettings(relay_concurrency=3, retention_days=2))
    assert (config.concurrency, config.retention.days) == (3, 2)

"""The running relay's own machinery: idle backoff, heartbeats, scheduled pruning, its
concurrency limit, and a worker's graceful SIGTERM while busy.

Where a behaviour is about time, the relay's clock is a :class:`FakeClock` and its idle waits are
counted, so the assertions hold on a slow, shared CI box; real waits only bound things from below.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import signal
import types
from collections.abc import Awaitable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import select
from sqlalchemy.engine import Engine

from app.core.db import Database, session_scope
from app.core.settings import DatabaseSettings, EventsSettings, Settings
from app.events import DoNotRetry, current_delivery, listener
from app.events.outbox import OutboxDelivery, OutboxEvent, Relay, RelayConfig, repository
from app.events.outbox import relay as relay_module
from app.events.outbox import service as outbox_service
from app.events.outbox.runtime import make_relay
from tests.events.outbox_support import (
    ORG,
    FakeClock,
    OtherProbeEmitted,
    ProbeEmitted,
    create_probe_table,
    drop_probe_table,
    probe_rows,
    ready_emitter,
    record_probe,
    scalar,
    start_worker,
    statuses,
    until,
    worker_env,
)


@listener(ProbeEmitted, delivery="durable", listener_id="tests.quick")
async def quick(event: ProbeEmitted) -> None:
    """Do nothing: the delivery itself is what these tests watch."""


async def _deliveries(db: Database) -> list[OutboxDelivery]:
    async with session_scope() as session:
        return list(
            (await session.scalars(select(OutboxDelivery).order_by(OutboxDelivery.id))).all()
        )


def _count_claims(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record the loop time of every ``repository.claim`` call from now on."""
    calls: list[float] = []
    claim = repository.claim

    async def counted(*args: Any, **kwargs: Any) -> list[repository.Claim]:
        calls.append(asyncio.get_running_loop().time())
        return await claim(*args, **kwargs)

    monkeypatch.setattr(repository, "claim", counted)
    return calls


@contextlib.contextmanager
def _count_statements() -> Iterator[list[str]]:
    """Record every SQL statement any engine sends inside the block."""
    sent: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        sent.append(statement)

    sa_event.listen(Engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        sa_event.remove(Engine, "before_cursor_execute", record)


# -- 1. idle backoff -----------------------------------------------------------------------------


class VirtualPolls:
    """Stands in for ``asyncio.wait_for`` in the relay module, where only the claim loop uses it.

    Every wait's timeout is recorded. While ``seconds`` of virtual time remain, a wait that no
    wake-up has already ended times out at once and spends its timeout from that budget; once the
    budget is short, waits last until a real wake-up. So a whole idle minute passes without
    sleeping, and what the relay would have done in it is counted exactly.
    """

    def __init__(self, seconds: float) -> None:
        self.left = seconds
        self.timeouts: list[float] = []
        self.real = 0
        """Waits that lasted until a real wake-up (or still do)."""

    def grant(self, seconds: float) -> None:
        """Let ``seconds`` of virtual time pass (from now) before waits become real again."""
        self.left = seconds

    async def wait_for(self, awaitable: Awaitable[Any], timeout: float) -> Any:
        self.timeouts.append(timeout)
        task = asyncio.ensure_future(awaitable)
        await asyncio.sleep(0)  # a wake-up that is already set ends the wait now
        if task.done() or timeout > self.left:
            self.real += 1
            return await task
        self.left -= timeout
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        raise TimeoutError

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        patched = types.SimpleNamespace(**vars(asyncio))
        patched.wait_for = self.wait_for
        monkeypatch.setattr(relay_module, "asyncio", patched)


@pytest.mark.parametrize("wake", ["local commit", "notify"])
async def test_an_idle_relay_backs_off_to_its_cap_and_new_work_resets_the_backoff(
    db: Database,
    is_postgres: bool,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    wake: str,
) -> None:
    if wake == "notify" and not is_postgres:
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    polls = VirtualPolls(seconds=60)
    polls.install(monkeypatch)
    claims = _count_claims(monkeypatch)
    # On NOTIFY the relay has a database and an emitter of its own: only NOTIFY can wake it.
    relay_db = Database(DatabaseSettings(url=settings.database.url)) if wake == "notify" else db
    emitter = ready_emitter(relay_db, quick)
    config = RelayConfig(poll_min_seconds=0.5, poll_max_seconds=8, listen=wake == "notify")
    relay = Relay(emitter, relay_db, config)
    if wake == "local commit":
        emitter.durable_sink.add_waker(relay.wake)  # type: ignore[union-attr]
    await relay.start()
    try:
        # One idle minute: 0.5 + 1 + 2 + 4 s, then every 8 s; the 11th wait outlasts the minute.
        await until(lambda: polls.real == 1, what="an idle minute of polls")
        assert polls.timeouts == [0.5, 1, 2, 4, 8, 8, 8, 8, 8, 8, 8]
        assert len(claims) == 11  # polling every 0.5 s would have claimed 120 times

        polls.grant(7.5)  # enough for 0.5 + 1 + 2 + 4 s; the busy wait (8 s) is a real one
        writer = emitter if wake == "local commit" else ready_emitter(db, quick)
        async with session_scope():
            writer.emit(ProbeEmitted(organization_id=ORG, n=1))
        await until(lambda: polls.real == 3, what="the relay to idle again")
        await until(lambda: _all_done(db, 1), what="the delivery")
        # Woken, it claimed the delivery and waited for it (up to the cap) while busy; idle
        # again, it polls from the minimum and backs off anew.
        assert polls.timeouts[11:] == [8, 0.5, 1, 2, 4, 8]
        assert len(claims) == 17  # one claim before each wait, nothing in between
    finally:
        await relay.stop()
        if relay_db is not db:
            await relay_db.dispose()


async def test_an_idle_relay_does_not_hammer_the_database(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    claims = _count_claims(monkeypatch)
    config = RelayConfig(poll_min_seconds=0.02, poll_max_seconds=0.16, listen=False)
    relay = Relay(ready_emitter(db, quick), db, config)
    loop = asyncio.get_running_loop()
    with _count_statements() as sent:
        started = loop.time()
        await relay.start()
        await asyncio.sleep(1.0)
        window = loop.time() - started
        claimed, statements = list(claims), len(sent)
        await relay.stop()
    # Each idle wait is at least the backoff's interval: 0.02, 0.04, 0.08, then 0.16 s.
    intervals = [min(0.02 * 2**i, 0.16) for i in range(len(claimed))]
    gaps = [after - before for before, after in itertools.pairwise(claimed)]
    for gap, interval in zip(gaps, intervals, strict=False):
        assert gap >= interval - 0.002, (gaps, intervals)
    most = 1 + sum(1 for total in itertools.accumulate(intervals) if total <= window)
    assert 3 <= len(claimed) <= most  # about 9 in a second; at the minimum it would be 50
    # A claim is one statement; the only others are the rescue and the outbox gauges' two
    # indexed counts when the relay starts (then once a heartbeat).
    assert statements <= len(claimed) + 4, sent


# -- 2. heartbeats -------------------------------------------------------------------------------


async def test_a_delivery_outliving_its_lease_keeps_it_while_its_relay_heartbeats(
    db: Database,
) -> None:
    clock = FakeClock()
    lease = 30.0
    gate = asyncio.Event()
    attempts: list[int] = []

    @listener(ProbeEmitted, delivery="durable", listener_id="tests.long")
    async def long(event: ProbeEmitted) -> None:
        delivery = current_delivery()
        assert delivery is not None
        attempts.append(delivery.attempt)
        await gate.wait()

    emitter = ready_emitter(db, long, clock=clock)
    config = RelayConfig(lease_seconds=lease, heartbeat_seconds=0.02, listen=False)
    holder = Relay(emitter, db, config, clock=clock, worker="holder")
    rival = Relay(emitter, db, config, clock=clock, worker="rival")
    await emitter.emit_async(ProbeEmitted(organization_id=ORG, n=1))
    await holder.start()
    try:
        await until(lambda: bool(attempts), what="the delivery to start")
        for _ in range(5):  # 100 s in all: more than three leases
            # Each step is shorter than the lease, so a heartbeat computed just before it still
            # covers it; a lease never extended would have expired at the second step.
            clock.advance(20)
            expected = clock.now + timedelta(seconds=lease)

            async def extended(expected: datetime = expected) -> bool:
                [row] = await _deliveries(db)
                assert row.lease_until is not None
                return abs((row.lease_until - expected).total_seconds()) < 0.001

            await until(extended, what="a heartbeat to extend the lease")
            assert await rival.run_once() == 0  # rescues nothing, claims nothing
            [row] = await _deliveries(db)
            assert (row.status, row.worker, row.attempts, row.errors) == (
                "running",
                "holder",
                1,
                [],
            )
        gate.set()
        await until(lambda: _all_done(db, 1), what="the delivery to finish")
    finally:
        gate.set()
        await holder.stop()
    [row] = await _deliveries(db)
    assert (row.status, row.worker, row.attempts, row.errors) == ("done", "holder", 1, [])
    assert attempts == [1]  # it ran once


async def test_a_relay_whose_heartbeat_is_late_never_rescues_what_it_still_runs(
    db: Database,
) -> None:
    clock = FakeClock()
    gate = asyncio.Event()
    started: list[int] = []

    @listener(ProbeEmitted, delivery="durable", listener_id="tests.stalled")
    async def stalled(event: ProbeEmitted) -> None:
        started.append(event.n)
        await gate.wait()

    emitter = ready_emitter(db, stalled, clock=clock)
    config = RelayConfig(lease_seconds=30, heartbeat_seconds=3600, listen=False)  # no heartbeat
    holder = Relay(emitter, db, config, clock=clock, worker="holder")
    rival = Relay(emitter, db, config, clock=clock, worker="rival")
    await emitter.emit_async(ProbeEmitted(organization_id=ORG, n=1))
    await holder.start()
    try:
        await until(lambda: bool(started), what="the delivery to start")
        clock.advance(31)  # the lease has expired: the heartbeat is late
        assert await holder.rescue() == 0  # it is still running here
        [row] = await _deliveries(db)
        assert (row.status, row.worker) == ("running", "holder")
        assert await rival.rescue() == 1  # another relay does take it back
    finally:
        gate.set()
        await holder.stop()


# -- 3. scheduled pruning ------------------------------------------------------------------------


async def test_the_relay_prunes_old_finished_history_on_its_schedule(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()
    pruned_at: list[float] = []
    prune = outbox_service.prune_history

    async def counted_prune(*args: Any, **kwargs: Any) -> int:
        pruned_at.append(asyncio.get_running_loop().time())
        return await prune(*args, **kwargs)

    monkeypatch.setattr(relay_module, "prune_history", counted_prune)

    @listener(ProbeEmitted, delivery="durable", listener_id="tests.settle")
    async def settle(event: ProbeEmitted) -> None:
        if event.n == 1:
            raise DoNotRetry("rejected for good")

    @listener(OtherProbeEmitted, delivery="durable", listener_id="tests.not_deployed")
    async def not_deployed(event: OtherProbeEmitted) -> None:
        """A listener this relay does not run: its delivery stays pending."""

    writer = ready_emitter(db, settle, not_deployed, clock=clock)
    async with session_scope():
        writer.emit(ProbeEmitted(organization_id=ORG, n=0))  # done
        writer.emit(ProbeEmitted(organization_id=ORG, n=1))  # dead letter
        writer.emit(OtherProbeEmitted(organization_id=ORG, n=2))  # pending
    interval = 0.05
    config = RelayConfig(
        heartbeat_seconds=0.01,
        prune_interval_seconds=interval,
        retention=timedelta(hours=1),
        listen=False,
    )
    relay = Relay(ready_emitter(db, settle, clock=clock), db, config, clock=clock)
    assert await relay.run_until_idle() == 2
    assert await statuses(db) == {"done": 1, "dead": 1, "pending": 1}

    async def events() -> list[Any]:
        async with session_scope() as session:
            rows = await session.execute(select(OutboxEvent.name, OutboxEvent.payload))
            return sorted((name, payload["n"]) for name, payload in rows)

    everything = [("test.outbox.other", 2), ("test.outbox.probe", 0), ("test.outbox.probe", 1)]
    await relay.start()
    try:
        await until(lambda: len(pruned_at) >= 2, what="two scheduled prunes")
        assert await events() == everything  # nothing is older than the retention yet
        clock.advance(3600 + 60)
        await until(lambda: _fewer_events_than(db, 3), what="a prune of old history")
        # The dead letter's event and the pending delivery's event stay.
        assert await events() == [("test.outbox.other", 2), ("test.outbox.probe", 1)]
        assert await statuses(db) == {"dead": 1, "pending": 1}
        await until(lambda: len(pruned_at) >= 4, what="more scheduled prunes")
    finally:
        await relay.stop()
    assert await events() == [("test.outbox.other", 2), ("test.outbox.probe", 1)]
    gaps = [after - before for before, after in itertools.pairwise(pruned_at)]
    assert min(gaps) >= interval - 0.002, gaps  # on its schedule, not every heartbeat


async def _fewer_events_than(db: Database, count: int) -> bool:
    return int(await scalar(db, "SELECT count(*) FROM outbox_events")) < count


async def _all_done(db: Database, total: int) -> bool:
    return (await statuses(db)).get("done", 0) == total


# -- 4. the concurrency limit --------------------------------------------------------------------


async def test_events_relay_concurrency_caps_the_deliveries_running_at_once(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    limit, total = 3, 12
    gates = {n: asyncio.Event() for n in range(total)}
    started: list[int] = []
    finished = 0
    active = peak = 0

    @listener(ProbeEmitted, delivery="durable", listener_id="tests.gated")
    async def gated(event: ProbeEmitted) -> None:
        nonlocal active, peak, finished
        active += 1
        peak = max(peak, active)
        started.append(event.n)
        try:
            await gates[event.n].wait()
        finally:
            active -= 1
            finished += 1

    monkeypatch.setenv("EVENTS_RELAY_CONCURRENCY", str(limit))
    emitter = ready_emitter(db, gated)
    async with session_scope():
        for n in range(total):
            emitter.emit(ProbeEmitted(organization_id=ORG, n=n))
    relay = make_relay(emitter, db, EventsSettings())
    assert relay.config.concurrency == limit
    await relay.start()
    try:
        for released in range(total + 1):
            expected = min(total, limit + released)

            def caught_up(expected: int = expected, released: int = released) -> bool:
                return len(started) >= expected and finished == released

            await until(caught_up, what=f"{expected} deliveries to start")
            await asyncio.sleep(0.02)  # a relay without a limit would start more meanwhile
            assert len(started) == expected
            assert active == expected - released <= limit
            if released == 0:  # the whole batch was claimed at once; only `limit` of it runs
                assert await statuses(db) == {"running": total}
            if released < total:
                gates[started[released]].set()
        await until(lambda: _all_done(db, total), what="every delivery")
    finally:
        for gate in gates.values():
            gate.set()
        await relay.stop()
    assert peak == limit
    assert sorted(started) == list(range(total))


async def test_events_relay_pool_size_runs_more_deliveries_than_connections(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A delivery holds a connection only while its transaction runs SQL: a relay whose
    # listeners wait on a source runs many on a small pool (what keeps two workers of a sweep
    # under PostgreSQL's max_connections).
    monkeypatch.setenv("EVENTS_RELAY_CONCURRENCY", "8")
    monkeypatch.setenv("EVENTS_RELAY_POOL_SIZE", "2")
    active = peak = 0

    @listener(ProbeEmitted, delivery="durable", listener_id="tests.waiting")
    async def waiting(event: ProbeEmitted) -> None:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.05)  # as a sync waits on Oracle, holding no connection
        active -= 1

    emitter = ready_emitter(db, waiting)
    async with session_scope():
        for n in range(24):
            emitter.emit(ProbeEmitted(organization_id=ORG, n=n))
    relay = make_relay(emitter, db, EventsSettings())
    assert relay.config.pool_size == 2
    await relay.start()
    try:
        if not db.is_sqlite:  # SQLite's relay shares the process database (one writer)
            assert relay.database is not db
            assert relay.database.engine.pool.size() == 2  # type: ignore[attr-defined]
        await until(lambda: _all_done(db, 24), what="every delivery")
    finally:
        await relay.stop()
    assert peak > 2


# -- 5. SIGTERM to a busy worker -----------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("outcome", ["finished", "released"])
async def test_sigterm_stops_a_busy_worker_gracefully_and_loses_nothing(
    db: Database, database_url: str, project_root: Path, tmp_path: Path, outcome: str
) -> None:
    """A worker holds 4 deliveries in its listeners and 4 more claimed ahead when SIGTERM comes.

    It releases the 4 never started at once, then lets the running ones finish (within the
    shutdown timeout) or, past it, releases them too; either way it exits 0, no attempt is
    counted for a delivery that did not finish, and a later relay delivers the rest exactly once.
    """
    total, concurrency, batch = 12, 4, 4
    gate = tmp_path / "gate"
    env = worker_env(
        database_url,
        EVENTS_RELAY_CONCURRENCY=str(concurrency),
        EVENTS_RELAY_BATCH_SIZE=str(batch),
        EVENTS_RELAY_SHUTDOWN_TIMEOUT_SECONDS="120" if outcome == "finished" else "0.5",
        OUTBOX_PROBE_DELAY_MS="0",
        OUTBOX_PROBE_GATE=str(gate),
    )
    await create_probe_table(db)
    emitter = ready_emitter(db, record_probe)
    async with session_scope():
        for n in range(total):
            emitter.emit(ProbeEmitted(organization_id=ORG, n=n))
    held = concurrency + batch
    worker = start_worker(env, project_root)
    try:

        async def claimed() -> bool:
            return await statuses(db) == {"running": held, "pending": total - held}

        await until(claimed, 60, "the worker to claim a batch")
        worker.send_signal(signal.SIGTERM)
        if outcome == "finished":

            async def queue_released() -> bool:
                return await statuses(db) == {
                    "running": concurrency,
                    "pending": total - concurrency,
                }

            await until(queue_released, 30, "the worker to release what it had not started")
            assert worker.poll() is None, "the worker exited with deliveries in flight"
            gate.touch()
        output, _ = await asyncio.to_thread(worker.communicate, timeout=60)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(10)
    assert worker.returncode == 0, output
    assert "worker stopped" in output

    done = concurrency if outcome == "finished" else 0
    rows = await _deliveries(db)
    assert {(d.status, d.attempts) for d in rows if d.status == "done"} <= {("done", 1)}
    assert sum(d.status == "done" for d in rows) == done
    left = [d for d in rows if d.status != "done"]
    assert [(d.status, d.attempts, d.errors, d.lease_token) for d in left] == [
        ("pending", 0, [], None)
    ] * (total - done)
    assert len(await probe_rows(db)) == done

    # Nothing lost: another relay delivers the rest, each exactly once.
    after = Relay(ready_emitter(db, record_probe), db, RelayConfig(listen=False))
    assert await after.run_until_idle() == total - done
    assert {(d.status, d.attempts, len(d.errors)) for d in await _deliveries(db)} == {
        ("done", 1, 0)
    }
    assert sorted(n for _, n in await probe_rows(db)) == list(range(total))
    await drop_probe_table(db)

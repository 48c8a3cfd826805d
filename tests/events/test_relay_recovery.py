"""Crash recovery with real worker processes, and two relays sharing one PostgreSQL."""

from __future__ import annotations

import signal
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import text

from app.core.db import Database, session_scope
from app.core.settings import DatabaseSettings, Settings
from app.events import current_delivery, listener
from app.events.outbox import Relay, RelayConfig
from tests.events.outbox_support import (
    ORG,
    ProbeEmitted,
    create_probe_table,
    drop_probe_table,
    insert_probe,
    probe_rows,
    ready_emitter,
    record_probe,
    scalar,
    start_worker,
    statuses,
    until,
    worker_env,
)

EVENTS = 500


@pytest.mark.slow
async def test_a_killed_worker_loses_nothing_and_doubles_nothing(
    db: Database, database_url: str, project_root: Path
) -> None:
    await create_probe_table(db)
    env = worker_env(database_url)
    first = second = None
    try:
        emitter = ready_emitter(db, record_probe)
        for start in range(0, EVENTS, 100):
            async with session_scope():
                for n in range(start, start + 100):
                    emitter.emit(ProbeEmitted(organization_id=ORG, n=n))

        async def probes_at_least(count: int) -> bool:
            return int(await scalar(db, "SELECT count(*) FROM outbox_probe")) >= count

        first = start_worker(env, project_root)
        await until(lambda: probes_at_least(60), 60, "the first worker to deliver")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        at_kill = await statuses(db)
        assert at_kill.get("done", 0) < EVENTS, "the worker finished before it was killed"
        assert at_kill.get("running", 0) > 0, f"nothing was in flight at the kill: {at_kill}"

        second = start_worker(env, project_root)

        async def all_done() -> bool:
            return (await statuses(db)).get("done", 0) == EVENTS

        await until(all_done, 60, "the second worker to finish")
        second.send_signal(signal.SIGTERM)
        output, _ = second.communicate(timeout=30)
        assert second.returncode == 0, output
        assert "worker stopped" in output
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(10)
    rows = await probe_rows(db)
    assert len(rows) == EVENTS, "a delivery was lost or doubled"
    assert len({event_id for event_id, _ in rows}) == EVENTS
    assert sorted(n for _, n in rows) == list(range(EVENTS))
    assert await statuses(db) == {"done": EVENTS}
    rescued = await scalar(
        db, "SELECT count(*) FROM outbox_deliveries WHERE last_error LIKE 'LeaseExpired%'"
    )
    # What the dead worker held came back (a commit in flight at the kill may have landed).
    assert 0 < int(rescued) <= at_kill["running"]
    await drop_probe_table(db)


runs: Counter[int] = Counter()


@listener(ProbeEmitted, delivery="durable", listener_id="tests.counted")
async def counted(event: ProbeEmitted) -> None:
    """Count every run of every delivery, and write one probe row per event."""
    delivery = current_delivery()
    assert delivery is not None
    runs[delivery.delivery_id] += 1
    await insert_probe(event.n)


@pytest.mark.slow
async def test_two_relays_share_5000_deliveries_without_duplicates(
    db: Database, is_postgres: bool, settings: Settings
) -> None:
    if not is_postgres:
        pytest.skip("relays share work across processes on PostgreSQL")
    total = 5000
    runs.clear()
    await create_probe_table(db)
    databases = [Database(DatabaseSettings(url=settings.database.url)) for _ in range(2)]
    config = RelayConfig(concurrency=8, poll_min_seconds=0.05, poll_max_seconds=0.5)
    relays = [
        Relay(ready_emitter(database, counted), database, config, worker=f"relay-{i}")
        for i, database in enumerate(databases)
    ]
    try:
        for relay in relays:
            await relay.start()
        emitter = ready_emitter(db, counted)
        for start in range(0, total, 500):
            async with session_scope():
                for n in range(start, start + 500):
                    emitter.emit(ProbeEmitted(organization_id=ORG, n=n))

        async def all_done() -> bool:
            return (await statuses(db)).get("done", 0) == total

        await until(all_done, 120, "5000 deliveries")
    finally:
        for relay in relays:
            await relay.stop()
        for database in databases:
            await database.dispose()
    assert len(runs) == total
    assert set(runs.values()) == {1}, "a delivery ran twice"
    assert await statuses(db) == {"done": total}
    rows = await probe_rows(db)
    assert len(rows) == total
    assert len({event_id for event_id, _ in rows}) == total
    async with db.engine.connect() as conn:
        result = await conn.execute(
            text("SELECT worker, count(*) FROM outbox_deliveries GROUP BY worker")
        )
        per_worker = {row[0]: row[1] for row in result}
    assert set(per_worker) == {"relay-0", "relay-1"}, per_worker
    assert min(per_worker.values()) > total // 10, f"one relay did nearly nothing: {per_worker}"
    await drop_probe_table(db)

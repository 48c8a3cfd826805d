"""Crash recovery with real worker processes, and two relays sharing one PostgreSQL."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from app.core.db import Database, session_scope
from app.core.settings import DatabaseSettings, Settings
from app.events import current_delivery, listener
from app.events.outbox import Relay, RelayConfig
from tests.events.outbox_support import (
    ORG,
    PROBE_LISTENER,
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


stalls: list[int] = []
resume = asyncio.Event()


@listener(ProbeEmitted, delivery="durable", listener_id=PROBE_LISTENER)
async def stalling_probe(event: ProbeEmitted) -> None:
    """The probe listener of a relay under load: its process computes for seconds at a time.

    It blocks its event loop two seconds at a go (twice the lease) until ``resume`` is set,
    so nothing else of the process runs meanwhile, renewals included unless they have a thread
    of their own; then it writes the probe row.
    """
    stalls.append(event.n)
    while not resume.is_set():
        time.sleep(2.0)  # the point: a loaded process starves its event loop
        await asyncio.sleep(0)
    await insert_probe(event.n)


@pytest.mark.slow
async def test_a_relay_whose_event_loop_stalls_keeps_its_lease_from_a_second_relay(
    db: Database, database_url: str, project_root: Path
) -> None:
    """Renewals go on while a delivery starves its event loop: the delivery runs once.

    The relay here holds a one-second lease; its listener blocks the event loop two seconds at
    a time, for longer than several leases, while a ``python -m app worker`` running the same
    listener rescues expired leases every 0.3 s. The delivery must neither be re-claimed nor
    run twice, and it completes at its first attempt.
    """
    stalls.clear()
    resume.clear()
    await create_probe_table(db)
    worker = None
    emitter = ready_emitter(db, stalling_probe)
    config = RelayConfig(lease_seconds=1.0, heartbeat_seconds=0.5, listen=False)
    relay = Relay(emitter, db, config, worker="stalling")
    try:
        await emitter.emit_async(ProbeEmitted(organization_id=ORG, n=7))
        await relay.start()
        await until(lambda: bool(stalls), 30, "the delivery to start")
        env = worker_env(
            database_url,
            APP_LOG_LEVEL="INFO",  # its "relay ... started" line says it is up
            EVENTS_RELAY_LEASE_SECONDS="1",
            EVENTS_RELAY_HEARTBEAT_SECONDS="0.3",
        )
        worker = start_worker(env, project_root)

        output = _lines_of(worker)
        await until(
            lambda: any("started" in line for line in output) or worker.poll() is not None,
            60,
            "the rival worker to start",
        )
        await asyncio.sleep(6)  # three two-second stalls while the rival rescues every 0.3 s
        assert worker.poll() is None, "\n".join(output)
        resume.set()
        await until(lambda: _done(db), 30, "the delivery to finish")
    finally:
        resume.set()
        await relay.stop()
        if worker is not None and worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            worker.wait(30)
    [row] = await _rows(db, "SELECT status, attempts, worker, last_error FROM outbox_deliveries")
    assert tuple(row) == ("done", 1, "stalling", None), row
    assert stalls == [7], "the delivery ran twice"
    assert [n for _, n in await probe_rows(db)] == [7]
    await drop_probe_table(db)


async def _done(database: Database) -> bool:
    return (await statuses(database)).get("done", 0) == 1


async def _rows(database: Database, sql: str) -> list[Any]:
    async with database.engine.connect() as conn:
        return list((await conn.execute(text(sql))).all())


def _lines_of(process: subprocess.Popen[str]) -> list[str]:
    """Collect ``process``'s output lines on a thread (this test's event loop stalls)."""
    lines: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        lines.extend(process.stdout)

    threading.Thread(target=read, daemon=True).start()
    return lines

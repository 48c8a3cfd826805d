"""Contracts, listeners and helpers of the outbox tests.

``python -m app worker`` subprocesses load :data:`listeners` through
``EVENTS_EXTRA_LISTENERS=tests.events.outbox_support:listeners``. The probe table is created with
raw SQL (not in ``Base.metadata``), so the models-versus-migrations check never sees it.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import text

from app.core.db import Database, session_scope
from app.events import AppEmitter, Event, RetryPolicy, current_envelope, listener
from app.events.outbox import OutboxSink
from tests.cli import app_env, start_app

ORG = uuid.UUID("00000000-0000-4000-8000-000000000001")
PROBE_LISTENER = "tests.outbox.probe"
PROBE_POLICY = RetryPolicy(max_attempts=5, base_delay=0.05, max_delay=0.2)


class ProbeEmitted(Event):
    """A test event for the outbox; ``key`` orders it, ``dedupe`` deduplicates it and ``due``
    delays its deliveries."""

    name: ClassVar[str] = "test.outbox.probe"

    n: int
    key: str | None = None
    dedupe: str | None = None
    due: datetime | None = None

    def ordering_key(self) -> str | None:
        return self.key

    def dedupe_key(self) -> str | None:
        return self.dedupe

    def deliver_at(self) -> datetime | None:
        return self.due


class OtherProbeEmitted(Event):
    """A second test event, for patterns and replays."""

    name: ClassVar[str] = "test.outbox.other"

    n: int


@listener(ProbeEmitted, delivery="durable", listener_id=PROBE_LISTENER, retry=PROBE_POLICY)
async def record_probe(event: ProbeEmitted) -> None:
    """Insert one probe row per delivery (after ``OUTBOX_PROBE_DELAY_MS``).

    When ``OUTBOX_PROBE_GATE`` names a file, each delivery first waits until that file exists,
    so a test can hold a worker's deliveries in flight for as long as it needs.
    """
    delay = float(os.environ.get("OUTBOX_PROBE_DELAY_MS", "0")) / 1000
    if delay:
        await asyncio.sleep(delay)
    gate = os.environ.get("OUTBOX_PROBE_GATE")
    while gate and not Path(gate).exists():
        await asyncio.sleep(0.02)
    await insert_probe(event.n)


listeners = [record_probe]


async def insert_probe(n: int) -> None:
    """Insert a probe row for the running delivery's event, in the delivery's transaction."""
    envelope = current_envelope()
    assert envelope is not None
    async with session_scope() as session:
        await session.execute(
            text("INSERT INTO outbox_probe (event_id, n) VALUES (:event_id, :n)"),
            {"event_id": str(envelope.id), "n": n},
        )


async def create_probe_table(database: Database) -> None:
    async with database.engine.begin() as conn:
        await conn.execute(text("DROP TABLE IF EXISTS outbox_probe"))
        await conn.execute(
            text("CREATE TABLE outbox_probe (event_id VARCHAR(36) NOT NULL, n INTEGER NOT NULL)")
        )


async def drop_probe_table(database: Database) -> None:
    async with database.engine.begin() as conn:
        await conn.execute(text("DROP TABLE IF EXISTS outbox_probe"))


async def probe_rows(database: Database) -> list[tuple[str, int]]:
    async with database.engine.connect() as conn:
        result = await conn.execute(text("SELECT event_id, n FROM outbox_probe"))
        return [(row[0], row[1]) for row in result]


async def scalar(database: Database, sql: str, **params: Any) -> Any:
    async with database.engine.connect() as conn:
        return (await conn.execute(text(sql), params)).scalar()


async def statuses(database: Database) -> dict[str, int]:
    async with database.engine.connect() as conn:
        result = await conn.execute(
            text("SELECT status, count(*) FROM outbox_deliveries GROUP BY status")
        )
        return {row[0]: row[1] for row in result}


def ready_emitter(
    database: Database, *fns: Callable[..., Any], clock: Callable[[], datetime] | None = None
) -> AppEmitter:
    """A strict emitter with ``fns`` registered and the outbox installed, ready to emit."""
    emitter = AppEmitter()
    for fn in fns:
        emitter.register(fn, module="tests")
    emitter.durable_sink = OutboxSink(database, clock=clock) if clock else OutboxSink(database)
    emitter.mark_ready()
    return emitter


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


async def until(
    check: Callable[[], Awaitable[bool] | bool], timeout: float = 30.0, what: str = "a condition"
) -> None:
    """Wait until ``check()`` holds, polling; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


def worker_env(database_url: str, **overrides: str) -> dict[str, str]:
    """The environment of a ``python -m app worker`` running :data:`listeners` on a fast relay."""
    values = {
        "DATABASE_URL": database_url,
        "APP_ENV": "test",
        "APP_LOG_LEVEL": "WARNING",
        "EVENTS_EXTRA_LISTENERS": "tests.events.outbox_support:listeners",
        "EVENTS_RELAY_CONCURRENCY": "8",
        "EVENTS_RELAY_LEASE_SECONDS": "2",
        "EVENTS_RELAY_HEARTBEAT_SECONDS": "0.5",
        "EVENTS_RELAY_POLL_MIN_SECONDS": "0.05",
        "EVENTS_RELAY_POLL_MAX_SECONDS": "0.5",
        "OUTBOX_PROBE_DELAY_MS": "20",
    }
    return app_env(**{**values, **overrides})


def start_worker(env: dict[str, str], root: Path) -> subprocess.Popen[str]:
    """Start ``python -m app worker`` in ``root``; its output (stdout and stderr) is piped."""
    return start_app(["worker"], env, root)

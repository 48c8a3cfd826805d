"""Outbox benchmark on PostgreSQL: throughput beside procrastinate, emit cost, wake-up latency.

Run with ``make bench`` or ``.venv/bin/python benchmarks/outbox.py``. It creates a throw-away
database on ``BENCH_PG_URL`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``), applies
our migrations and procrastinate's schema to it, and drops it at the end.

- Throughput: ``BENCH_OUTBOX_EVENTS`` (5000) no-op durable deliveries run by 1 then 2
  ``python -m app worker`` processes (concurrency 8 each); procrastinate runs the same no-op
  jobs with 1 then 2 worker processes of the same concurrency, in the same database, in turns.
  "Emit and deliver": 8 concurrent producers emit each event in its own transaction
  (``await emit_async(event)``; procrastinate: ``defer_async()``), timed from the first emit to
  the last delivery. "Drain": the backlog commits in one transaction (procrastinate:
  ``batch_defer_async``), timed from that commit to the last delivery. Target (issue 4):
  ours >= procrastinate.
- Emit cost: the median time of a transaction that inserts one row, with and without a durable
  emit in it. Target: the difference <= 1 ms.
- Wake-up: an idle worker (polling every 5 s, so only NOTIFY can wake it early) runs a
  delivery; the time from the emitting transaction's commit to the listener's first line.
  Target: median <= 50 ms.
- Held-key claim: the median time of one claim (10 due deliveries) with 0, then 50,000
  deliveries held behind a dead letter of their ordering key. Target (issue 16): <= 1.5x. The
  same 50,000 rows not marked ``held`` show what every claim paid before. ``--claim`` runs
  only these rows.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, ClassVar

ROOT = Path(__file__).resolve().parents[1]
# The project first, and not this folder, which a script run puts first: its http.py would
# hide the standard library's http from httpx and the app.
sys.path[:] = [str(ROOT), *(p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks")]

import asyncpg  # noqa: E402
from sqlalchemy import text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from app.core.db import get_database, init_database, session_scope, utcnow  # noqa: E402
from app.core.settings import DatabaseSettings  # noqa: E402
from app.events import AppEmitter, Event, listener  # noqa: E402
from app.events.outbox import install_outbox, repository  # noqa: E402

SERVER = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
EVENTS = int(os.environ.get("BENCH_OUTBOX_EVENTS", "5000"))
CONCURRENCY = 8
ORG = uuid.UUID("00000000-0000-4000-8000-00000000be4c")


class BenchPinged(Event):
    """A no-op durable delivery."""

    name: ClassVar[str] = "bench.outbox.pinged"
    n: int


class BenchTimed(Event):
    """A delivery whose start time is recorded."""

    name: ClassVar[str] = "bench.outbox.timed"
    n: int


@listener(BenchPinged, delivery="durable", listener_id="bench.noop")
async def bench_noop(event: BenchPinged) -> None:
    return None


@listener(BenchTimed, delivery="durable", listener_id="bench.timed")
async def bench_timed(event: BenchTimed) -> None:
    started = time.time()
    async with session_scope() as session:
        await session.execute(
            text("INSERT INTO bench_latency (n, started) VALUES (:n, :t)"),
            {"n": event.n, "t": started},
        )


bench_listeners: list[Callable[..., Any]] = [bench_noop, bench_timed]
"""Loaded by the workers: ``EVENTS_EXTRA_LISTENERS=benchmarks.outbox:bench_listeners``."""


# -- processes -------------------------------------------------------------------------------


def start_ours(url: str, **settings: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "EVENTS_"))}
    env.update(
        DATABASE_URL=url,
        APP_ENV="test",
        APP_LOG_LEVEL="WARNING",
        EVENTS_EXTRA_LISTENERS="benchmarks.outbox:bench_listeners",
        EVENTS_RELAY_CONCURRENCY=str(CONCURRENCY),
    )
    env.update(settings)
    return subprocess.Popen(
        [sys.executable, "-m", "app", "worker"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL
    )


def start_procrastinate(conninfo: str) -> subprocess.Popen[bytes]:
    script = [sys.executable, str(Path(__file__)), "--procrastinate-worker", conninfo]
    return subprocess.Popen(script, cwd=ROOT)


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


def procrastinate_app(conninfo: str) -> Any:
    import procrastinate

    # It warns that a benchmark script defines its app in __main__; that is on purpose here.
    logging.getLogger("procrastinate").setLevel(logging.ERROR)

    app = procrastinate.App(
        connector=procrastinate.PsycopgConnector(conninfo=conninfo, min_size=2, max_size=12)
    )

    @app.task(name="bench_noop")
    async def noop() -> None:
        return None

    return app


def procrastinate_worker(conninfo: str) -> None:
    app = procrastinate_app(conninfo)

    async def run() -> None:
        async with app.open_async():
            await app.run_worker_async(concurrency=CONCURRENCY, listen_notify=True)

    asyncio.run(run())


# -- measuring -------------------------------------------------------------------------------


async def count(conn: asyncpg.Connection, sql: str) -> int:
    return int(await conn.fetchval(sql))


async def wait_for(check: Callable[[], Awaitable[bool]], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError("the benchmark stalled")
        await asyncio.sleep(0.02)


async def listening(conn: asyncpg.Connection, database: str, channel: str, n: int) -> None:
    sql = (
        "SELECT count(*) FROM pg_stat_activity "
        f"WHERE datname = '{database}' AND query ILIKE 'LISTEN%{channel}%'"
    )

    async def ready() -> bool:
        return await count(conn, sql) >= n

    await wait_for(ready, 60)


async def produce(emit_one: Callable[[int], Awaitable[None]], total: int) -> None:
    numbers = iter(range(total))

    async def producer() -> None:
        for n in numbers:
            await emit_one(n)

    await asyncio.gather(*(producer() for _ in range(CONCURRENCY)))


async def ours_throughput(
    url: str, conn: asyncpg.Connection, database: str, emitter: AppEmitter, relays: int
) -> float:
    await conn.execute("TRUNCATE outbox_deliveries, outbox_events")
    workers = [start_ours(url) for _ in range(relays)]
    try:
        await listening(conn, database, "workflow_hub_outbox", relays)

        async def emit_one(n: int) -> None:
            await emitter.emit_async(BenchPinged(organization_id=ORG, n=n))  # its own transaction

        start = time.perf_counter()
        await produce(emit_one, EVENTS)
        done = "SELECT count(*) FROM outbox_deliveries WHERE status = 'done'"

        async def finished() -> bool:
            return await count(conn, done) == EVENTS

        await wait_for(finished)
        return EVENTS / (time.perf_counter() - start)
    finally:
        stop(workers)


async def ours_drain(
    url: str, conn: asyncpg.Connection, database: str, emitter: AppEmitter, relays: int
) -> float:
    await conn.execute("TRUNCATE outbox_deliveries, outbox_events")
    workers = [start_ours(url) for _ in range(relays)]
    try:
        await listening(conn, database, "workflow_hub_outbox", relays)
        async with session_scope():  # the whole backlog commits at once
            for n in range(EVENTS):
                emitter.emit(BenchPinged(organization_id=ORG, n=n))
        start = time.perf_counter()
        done = "SELECT count(*) FROM outbox_deliveries WHERE status = 'done'"

        async def finished() -> bool:
            return await count(conn, done) == EVENTS

        await wait_for(finished)
        return EVENTS / (time.perf_counter() - start)
    finally:
        stop(workers)


async def procrastinate_drain(
    conninfo: str, conn: asyncpg.Connection, database: str, workers_n: int
) -> float:
    await conn.execute("TRUNCATE procrastinate_jobs CASCADE")
    app = procrastinate_app(conninfo)
    workers = [start_procrastinate(conninfo) for _ in range(workers_n)]
    try:
        await listening(conn, database, "procrastinate", workers_n)
        async with app.open_async():
            await app.tasks["bench_noop"].batch_defer_async(*({} for _ in range(EVENTS)))
            start = time.perf_counter()
            done = "SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'"

            async def finished() -> bool:
                return await count(conn, done) == EVENTS

            await wait_for(finished)
            return EVENTS / (time.perf_counter() - start)
    finally:
        stop(workers)


async def procrastinate_throughput(
    conninfo: str, conn: asyncpg.Connection, database: str, workers_n: int
) -> float:
    await conn.execute("TRUNCATE procrastinate_jobs CASCADE")
    app = procrastinate_app(conninfo)
    workers = [start_procrastinate(conninfo) for _ in range(workers_n)]
    try:
        await listening(conn, database, "procrastinate", workers_n)
        async with app.open_async():
            task = app.tasks["bench_noop"]

            async def defer_one(n: int) -> None:
                await task.defer_async()

            start = time.perf_counter()
            await produce(defer_one, EVENTS)
            done = "SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'"

            async def finished() -> bool:
                return await count(conn, done) == EVENTS

            await wait_for(finished)
            return EVENTS / (time.perf_counter() - start)
    finally:
        stop(workers)


async def emit_cost(emitter: AppEmitter, rounds: int = 15, per_round: int = 200) -> list[float]:
    """Median seconds of a one-row transaction without, then with, a durable emit."""

    async def plain(n: int) -> None:
        async with session_scope() as session:
            await session.execute(text("INSERT INTO bench_rows (n) VALUES (:n)"), {"n": n})

    async def with_emit(n: int) -> None:
        async with session_scope() as session:
            await session.execute(text("INSERT INTO bench_rows (n) VALUES (:n)"), {"n": n})
            emitter.emit(BenchPinged(organization_id=ORG, n=n))

    samples: list[list[float]] = [[], []]
    for fn in (plain, with_emit):  # warm-up
        for n in range(50):
            await fn(n)
    for _ in range(rounds):
        for index, fn in enumerate((plain, with_emit)):
            for n in range(per_round):
                start = time.perf_counter()
                await fn(n)
                samples[index].append(time.perf_counter() - start)
    return [statistics.median(values) for values in samples]


async def wake_latency(
    url: str, conn: asyncpg.Connection, database: str, emitter: AppEmitter, samples: int = 200
) -> list[float]:
    await conn.execute("TRUNCATE outbox_deliveries, outbox_events")
    worker = start_ours(url, EVENTS_RELAY_POLL_MIN_SECONDS="5", EVENTS_RELAY_POLL_MAX_SECONDS="5")
    try:
        await listening(conn, database, "workflow_hub_outbox", 1)
        await asyncio.sleep(0.5)
        committed: dict[int, float] = {}
        for n in range(samples):
            async with session_scope():
                emitter.emit(BenchTimed(organization_id=ORG, n=n))
            committed[n] = time.time()
            await asyncio.sleep(0.03 + random.random() * 0.02)

        async def recorded() -> bool:
            return await count(conn, "SELECT count(*) FROM bench_latency") == samples

        await wait_for(recorded, 60)
        rows = await conn.fetch("SELECT n, started FROM bench_latency")
        return sorted(row["started"] - committed[row["n"]] for row in rows)
    finally:
        stop([worker])


HELD = int(os.environ.get("BENCH_OUTBOX_HELD", "50000"))

_SEED_EVENT = """
INSERT INTO outbox_events (id, name, version, organization_id, correlation_id, occurred_at,
                           payload)
VALUES ($1, 'bench.outbox.pinged', 1, $2, 'bench', now(), '{"n": 0}')
"""
_SEED_DELIVERIES = """
INSERT INTO outbox_deliveries (event_id, listener_id, event_name, ordering_key, status,
                               attempts, available_at, errors, created_at, updated_at, held)
SELECT $1, 'bench.held', 'bench.outbox.pinged', $2 || (g % $3), $4, 0,
       now() - interval '1 hour', '[]', now(), now(), $5
FROM generate_series(0, $6 - 1) AS g
"""
HELD_KEYS = 1000
"""The held deliveries wait behind this many dead letters (one per ordering key)."""


async def claim_cost(rounds: int = 300) -> float:
    """Median seconds of one claim of 10 due deliveries (each released again afterwards)."""
    database = get_database()
    samples = []
    for _ in range(rounds):
        now = utcnow()
        start = time.perf_counter()
        claims = await repository.claim(
            database,
            listeners=["bench.held"],
            limit=10,
            now=now,
            lease_until=now,
            worker="bench",
        )
        samples.append(time.perf_counter() - start)
        assert len(claims) == 10
        await repository.release(database, claims, now=now)
    return statistics.median(samples)


async def held_claim(conn: asyncpg.Connection) -> tuple[float, float, float]:
    """Claim time with 0 held rows, 50,000 marked held, and the same rows unmarked (before).

    The held deliveries are spread over ``HELD_KEYS`` ordering keys, each behind its dead
    letter; the 10 due deliveries have keys of their own.
    """
    await conn.execute("TRUNCATE outbox_deliveries, outbox_events")
    event_id = uuid.uuid4()
    await conn.execute(_SEED_EVENT, event_id, ORG)
    seed = _SEED_DELIVERIES
    await conn.execute(seed, event_id, "stuck-", HELD_KEYS, "dead", False, HELD_KEYS)
    await conn.execute(seed, event_id, "free-", 10, "pending", False, 10)  # due, other keys
    await conn.execute("ANALYZE outbox_deliveries")
    empty = await claim_cost()
    await conn.execute(seed, event_id, "stuck-", HELD_KEYS, "pending", True, HELD)
    await conn.execute("ANALYZE outbox_deliveries")
    held = await claim_cost()
    await conn.execute("UPDATE outbox_deliveries SET held = false WHERE held")
    await conn.execute("ANALYZE outbox_deliveries")
    unmarked = await claim_cost(rounds=30)
    return empty, held, unmarked


# -- the run ---------------------------------------------------------------------------------


async def admin(sql: str) -> None:
    conn = await asyncpg.connect(SERVER)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def main(*, claim_only: bool = False) -> None:
    from app.core import migrations

    database = f"wfh_bench_outbox_{os.getpid()}"
    server = make_url(SERVER)
    url = server.set(drivername="postgresql+asyncpg", database=database).render_as_string(False)
    conninfo = server.set(drivername="postgresql", database=database).render_as_string(False)
    asyncio.run(admin(f'CREATE DATABASE "{database}"'))
    try:
        migrations.upgrade(url)
        if claim_only:
            asyncio.run(run_claim(url, conninfo))
        else:
            asyncio.run(run(url, conninfo, database))
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))


async def run(url: str, conninfo: str, database: str) -> None:
    init_database(DatabaseSettings(url=url, pool_size=CONCURRENCY + 2))
    emitter = AppEmitter()
    for fn in bench_listeners:
        emitter.register(fn, module="bench")
    install_outbox(emitter)
    emitter.mark_ready()
    app = procrastinate_app(conninfo)
    async with app.open_async():
        await app.schema_manager.apply_schema_async()
    conn = await asyncpg.connect(conninfo)
    try:
        await conn.execute("CREATE TABLE bench_rows (id serial PRIMARY KEY, n int NOT NULL)")
        await conn.execute("CREATE TABLE bench_latency (n int PRIMARY KEY, started float8)")
        rates: dict[str, float] = {}
        for n in (1, 2):  # interleaved, so that drift of a shared machine hits both alike
            rates[f"ours{n}"] = await ours_throughput(url, conn, database, emitter, n)
            rates[f"proc{n}"] = await procrastinate_throughput(conninfo, conn, database, n)
            rates[f"ours_drain{n}"] = await ours_drain(url, conn, database, emitter, n)
            rates[f"proc_drain{n}"] = await procrastinate_drain(conninfo, conn, database, n)
        plain, with_emit = await emit_cost(emitter)
        latencies = await wake_latency(url, conn, database, emitter)
        claims = await held_claim(conn)
    finally:
        await conn.close()
    report(rates, plain, with_emit, latencies, claims)


async def run_claim(url: str, conninfo: str) -> None:
    """Only the held-key claim rows (``--claim``): a few connections, a minute or so."""
    init_database(DatabaseSettings(url=url, pool_size=2))
    conn = await asyncpg.connect(conninfo)
    try:
        report_claims(await held_claim(conn))
    finally:
        await conn.close()


def report(
    rates: dict[str, float],
    plain: float,
    with_emit: float,
    lat: list[float],
    claims: tuple[float, float, float],
) -> None:
    p50 = statistics.median(lat)
    p95 = lat[int(len(lat) * 0.95) - 1]
    print(f"PostgreSQL, {EVENTS} no-op deliveries per run, concurrency {CONCURRENCY} per worker")
    header = ("throughput (deliveries/s)", "ours", "procrastinate", "ours/proc")
    print(f"{header[0]:<34} {header[1]:>8} {header[2]:>14}  {header[3]:>9}  target")
    print("-" * 82)
    cases = [
        ("emit and deliver, 1 worker", "ours1", "proc1"),
        ("emit and deliver, 2 workers", "ours2", "proc2"),
        (f"drain {EVENTS} queued, 1 worker", "ours_drain1", "proc_drain1"),
        (f"drain {EVENTS} queued, 2 workers", "ours_drain2", "proc_drain2"),
    ]
    for name, ours, theirs in cases:
        ratio = rates[ours] / rates[theirs]
        print(f"{name:<34} {rates[ours]:>8,.0f} {rates[theirs]:>14,.0f}  {ratio:>9.2f}  >= 1.00")
    print()
    print(f"{'latency':<44} {'value':>10}  {'':<18} target")
    print("-" * 82)
    rows = [
        ("1-row transaction", plain * 1e3, "", ""),
        ("1-row transaction + durable emit", with_emit * 1e3, "", ""),
        ("added by the durable emit (median)", (with_emit - plain) * 1e3, "", "<= 1 ms"),
        ("commit to delivery start, idle relay, p50", p50 * 1e3, "(NOTIFY)", "<= 50 ms"),
        ("commit to delivery start, idle relay, p95", p95 * 1e3, "", ""),
    ]
    for name, ms, note, target in rows:
        print(f"{name:<44} {ms:>7.3f} ms  {note:<18} {target}")
    report_claims(claims)


def report_claims(claims: tuple[float, float, float]) -> None:
    empty, held, unmarked = claims
    print()
    print(f"{'claim of 10 due deliveries (median)':<44} {'value':>10}  {'ratio':<18} target")
    print("-" * 82)
    claim_rows = [
        ("no held deliveries", empty, "1.00 (baseline)", ""),
        (f"{HELD:,} held behind dead letters", held, f"held/none = {held / empty:.2f}", "<= 1.5"),
        (f"{HELD:,} not marked held (before)", unmarked, f"{unmarked / empty:.1f}x", ""),
    ]
    for name, seconds, shown, target in claim_rows:
        print(f"{name:<44} {seconds * 1e3:>7.3f} ms  {shown:<18} {target}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--procrastinate-worker":
        procrastinate_worker(sys.argv[2])
    else:
        main(claim_only=sys.argv[1:] == ["--claim"])

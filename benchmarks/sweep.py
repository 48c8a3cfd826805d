"""Sweep benchmark on PostgreSQL: a task sweep of 10,000 users against the sandbox, by the bounds.

Run with ``make bench`` or ``.venv/bin/python benchmarks/sweep.py``. It creates a throw-away
database on ``BENCH_PG_URL`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``), applies
the migrations, and drops it at the end.

The sandbox runs standalone in its own process (``python -m app sandbox --port N``) with
``BENCH_SWEEP_USERS`` (10,000) people; relays are ``python -m app worker`` processes with the
per-integration concurrency limit at 32 (``HTTP_MAX_CONCURRENCY``). One sweep is one manual
``task_sweep`` run for the organisation, timed from the run's start to its finish (every delivery
of every user's ``user.sync.task.notifications`` done), as ``jobs run`` sees it.

The per-user work is the inboxes' task sync: the durable listeners of
``user.sync.task.notifications`` that the app subscribes. Where none is subscribed (the inbox
modules are not built), three stand-ins below do what each inbox's sync asks of its source: the
BPM worklist as the user for procurement and for hr (one Oracle call each, one page), and the
user's pending Yardi approvals (one call).

- Latency bound: ``N x k x L / C`` per integration (k calls per user at that integration, the
  pages included; L = 50 ms; C = 32 per relay process), the larger of Oracle's and Yardi's.
- Work floor: the same sweep with the sandbox at 0 ms latency: what the CPUs cost here.
- Target: wall time at most 1.15x the larger of the two. Peak memory (the relay's high-water
  RSS) at 1,000 and 10,000 users: the larger at most 1.2x the smaller. Two relay processes: the
  speed-up over one.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402
from sqlalchemy import insert  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from app.contracts.user import UserTaskSyncRequested  # noqa: E402
from app.core.db import init_database, session_scope  # noqa: E402
from app.core.settings import DatabaseSettings, Settings, get_settings, reset_settings  # noqa: E402
from app.core.tenancy import Organization  # noqa: E402
from app.events import listener  # noqa: E402
from app.integrations.runtime import get_integrations  # noqa: E402

SERVER = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
USERS = int(os.environ.get("BENCH_SWEEP_USERS", "10000"))
SMALL = max(1, USERS // 10)
LATENCY_MS = 50.0
LIMIT = 32
RELAY_CONCURRENCY = 2 * LIMIT
"""Deliveries at once per relay: enough to keep both integrations' 32 slots busy."""
ORACLE_CALLS = 2  # procurement and hr each list the user's BPM worklist (one page)
YARDI_CALLS = 1
TARGET_WALL = 1.15
TARGET_MEMORY = 1.2


# -- stand-ins for the inboxes' task sync (used only when the app subscribes none) -------------


async def _worklist(event: UserTaskSyncRequested, category: str) -> None:
    # The connection is read in a short transaction of its own: no database connection is held
    # while the call waits on the source.
    async with session_scope(join=False) as session:
        client = await get_integrations().oracle_fusion(
            session, organization_id=event.organization_id, acting_user=event.oracle_username
        )
    await client.list_tasks(category=category)


@listener(UserTaskSyncRequested, delivery="durable", listener_id="bench.procurement.sync")
async def bench_procurement_sync(event: UserTaskSyncRequested) -> None:
    await _worklist(event, "Procurement")


@listener(UserTaskSyncRequested, delivery="durable", listener_id="bench.hr.sync")
async def bench_hr_sync(event: UserTaskSyncRequested) -> None:
    await _worklist(event, "HR")


@listener(UserTaskSyncRequested, delivery="durable", listener_id="bench.leasing.sync")
async def bench_leasing_sync(event: UserTaskSyncRequested) -> None:
    async with session_scope(join=False) as session:
        client = await get_integrations().yardi(session, organization_id=event.organization_id)
    await client.pending_approvals(approver=event.email)


bench_listeners: list[Callable[..., Any]] = [
    bench_procurement_sync,
    bench_hr_sync,
    bench_leasing_sync,
]
"""Loaded by the relays: ``EVENTS_EXTRA_LISTENERS=benchmarks.sweep:bench_listeners``."""


def app_has_task_sync_listeners() -> bool:
    """Whether the app's own modules sync inboxes on ``user.sync.task.notifications``."""
    from app.runtime import build_emitter

    emitter = build_emitter(Settings())
    return any(
        sub.event == UserTaskSyncRequested.name for sub in emitter.durable_listeners().values()
    )


# -- processes -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def base_env(url: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_", "EVENTS_", "SANDBOX_", "HTTP_", "SCHEDULER_"))
    }
    env.update(DATABASE_URL=url, APP_ENV="test", APP_LOG_LEVEL="WARNING")
    return env


def start_sandbox(url: str, port: int, latency_ms: float) -> subprocess.Popen[bytes]:
    env = base_env(url)
    env.update(SANDBOX_USERS=str(USERS), SANDBOX_LATENCY_MS=str(latency_ms))
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "sandbox", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise TimeoutError("the sandbox never answered")


def start_relay(url: str, extra_listeners: str) -> subprocess.Popen[bytes]:
    env = base_env(url)
    env.update(
        EVENTS_RELAY_CONCURRENCY=str(RELAY_CONCURRENCY),
        EVENTS_RELAY_BATCH_SIZE=str(LIMIT),
        HTTP_MAX_CONCURRENCY=str(LIMIT),
        # The PostgreSQL server is shared: a connection per waiting delivery is not needed
        # (the sync reads its connection settings in a short transaction of its own).
        DATABASE_POOL_SIZE="6",
        DATABASE_MAX_OVERFLOW="4",
    )
    if extra_listeners:
        env["EVENTS_EXTRA_LISTENERS"] = extra_listeners
    return subprocess.Popen(
        [sys.executable, "-m", "app", "worker"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL
    )


def peak_rss_mb(process: subprocess.Popen[bytes]) -> float:
    """The process's high-water resident set (VmHWM), in MB."""
    for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc (Linux only)")


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


async def listening(conn: asyncpg.Connection, database: str, n: int) -> None:
    sql = (
        "SELECT count(*) FROM pg_stat_activity "
        f"WHERE datname = '{database}' AND query ILIKE 'LISTEN%workflow_hub_outbox%'"
    )
    deadline = time.monotonic() + 60
    while int(await conn.fetchval(sql)) < n:
        if time.monotonic() > deadline:
            raise TimeoutError("the relays never listened")
        await asyncio.sleep(0.05)


# -- the data --------------------------------------------------------------------------------


async def create_organization(name: str, users: int) -> uuid.UUID:
    """An organisation of ``users`` sandbox people, connected to the sandbox."""
    from app.modules.user.models import User
    from app.sandbox.data import DataSet
    from app.sandbox.seed import seed_demo_connections

    data = DataSet(seed=get_settings().sandbox.seed, users=USERS)
    async with session_scope() as session:
        organization = Organization(name=name)
        session.add(organization)
        await session.flush()
        await seed_demo_connections(session, organization)
        rows = []
        for index in range(users):
            person = data.person(index)
            rows.append(
                {
                    "id": uuid.uuid4(),
                    "organization_id": organization.id,
                    "email": person.email,
                    "role": "employee",
                    "user_type": "EMPLOYEE",
                    "first_name": person.first_name,
                    "last_name": person.last_name,
                    "oracle_username": person.username,
                    "person_number": person.person_number,
                }
            )
        for start in range(0, len(rows), 1000):
            await session.execute(insert(User), rows[start : start + 1000])
        return organization.id


# -- one sweep -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sweep:
    seconds: float
    users: int
    failures: int
    peak_mb: float


async def sweep(
    url: str,
    conn: asyncpg.Connection,
    database: str,
    *,
    organization_id: uuid.UUID,
    relays: int,
    extra_listeners: str,
) -> Sweep:
    from app.scheduler import repository, service
    from app.scheduler.catalog import get_job

    await conn.execute("TRUNCATE outbox_deliveries, outbox_events")
    workers = [start_relay(url, extra_listeners) for _ in range(relays)]
    try:
        await listening(conn, database, relays)
        job = get_job("task_sweep")
        assert job is not None
        start = time.perf_counter()
        async with session_scope() as session:
            run_id = await service.run_now(
                session, job=job, organization_id=organization_id, requested_by_user_id=None
            )
        while True:
            async with session_scope() as session:
                run = await repository.get_run(session, run_id)
                assert run is not None
                fanned_out = run.fanned_out
            progress = await service.reconcile_run(run_id, fanned_out=fanned_out)
            if progress.status != "running":
                break
            if time.perf_counter() - start > 3600:
                raise TimeoutError("the sweep stalled")
            await asyncio.sleep(0.1)
        seconds = time.perf_counter() - start
        peak = max(peak_rss_mb(worker) for worker in workers)
        async with session_scope() as session:
            run = await repository.get_run(session, run_id)
            assert run is not None
            return Sweep(seconds, run.users, run.failures, peak)
    finally:
        stop(workers)


# -- the run ---------------------------------------------------------------------------------


async def admin(sql: str) -> None:
    conn = await asyncpg.connect(SERVER)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def main() -> None:
    from app.core import migrations

    database = f"wfh_bench_sweep_{os.getpid()}"
    server = make_url(SERVER)
    url = server.set(drivername="postgresql+asyncpg", database=database).render_as_string(False)
    conninfo = server.set(drivername="postgresql", database=database).render_as_string(False)
    asyncio.run(admin(f'CREATE DATABASE "{database}"'))
    try:
        migrations.upgrade(url)
        asyncio.run(run(url, conninfo, database))
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))


async def run(url: str, conninfo: str, database: str) -> None:
    from app.events.runtime import set_emitter
    from app.runtime import build_emitter

    port = free_port()
    os.environ.update(
        DATABASE_URL=url, APP_ENV="test", SANDBOX_PUBLIC_URL=f"http://127.0.0.1:{port}/sandbox"
    )
    reset_settings()
    stand_ins = not app_has_task_sync_listeners()
    extra = "benchmarks.sweep:bench_listeners" if stand_ins else ""
    if extra:
        os.environ["EVENTS_EXTRA_LISTENERS"] = extra
        reset_settings()
    settings = get_settings()
    init_database(DatabaseSettings(url=url, pool_size=4))
    emitter = build_emitter(settings)
    set_emitter(emitter)
    emitter.mark_ready()
    large = await create_organization("Bench large", USERS)
    small = await create_organization("Bench small", SMALL)
    conn = await asyncpg.connect(conninfo)
    results: dict[str, Sweep] = {}
    try:
        for latency, cases in (
            (LATENCY_MS, (("latency", large, 1), ("two relays", large, 2), ("small", small, 1))),
            (0.0, (("floor", large, 1),)),
        ):
            sandbox = start_sandbox(url, port, latency)
            try:
                for name, organization_id, relays in cases:
                    results[name] = await sweep(
                        url,
                        conn,
                        database,
                        organization_id=organization_id,
                        relays=relays,
                        extra_listeners=extra,
                    )
                    print(f"  {name}: {results[name]}", file=sys.stderr)
            finally:
                stop([sandbox])
    finally:
        await conn.close()
    report(results, stand_ins=stand_ins)


def report(results: dict[str, Sweep], *, stand_ins: bool) -> None:
    latency_s = LATENCY_MS / 1000
    oracle_bound = USERS * ORACLE_CALLS * latency_s / LIMIT
    yardi_bound = USERS * YARDI_CALLS * latency_s / LIMIT
    latency_bound = max(oracle_bound, yardi_bound)
    wall, floor = results["latency"], results["floor"]
    bound = max(latency_bound, floor.seconds)
    binds = "the latency bound" if latency_bound >= floor.seconds else "the work floor"
    two = results["two relays"]
    small = results["small"]
    listeners = "stand-ins (benchmarks/sweep.py)" if stand_ins else "the inbox modules' own"
    print(
        f"PostgreSQL, task sweep of {USERS:,} users; sandbox in its own process at "
        f"{LATENCY_MS:.0f} ms; per-integration limit {LIMIT}; task sync listeners: {listeners}"
    )
    print(f"{'figure':<52} {'value':>10}  {'ratio':>22}  target")
    print("-" * 100)
    rows: list[tuple[str, str, str, str]] = [
        (
            f"latency bound, Oracle: {USERS} x {ORACLE_CALLS} x {latency_s} s / {LIMIT}",
            f"{oracle_bound:.1f} s",
            "",
            "",
        ),
        (
            f"latency bound, Yardi: {USERS} x {YARDI_CALLS} x {latency_s} s / {LIMIT}",
            f"{yardi_bound:.1f} s",
            "",
            "",
        ),
        ("work floor (sandbox at 0 ms), 1 relay", f"{floor.seconds:.1f} s", "", ""),
        (f"bound (the larger: {binds})", f"{bound:.1f} s", "", ""),
        (
            "sweep at 50 ms, 1 relay",
            f"{wall.seconds:.1f} s",
            f"{wall.seconds / bound:.2f} x bound",
            f"<= {TARGET_WALL}",
        ),
        (
            "sweep at 50 ms, 2 relays",
            f"{two.seconds:.1f} s",
            f"{wall.seconds / two.seconds:.2f} x speed-up",
            "",
        ),
        (
            f"peak relay RSS, {SMALL:,} users",
            f"{small.peak_mb:.0f} MB",
            "",
            "",
        ),
        (
            f"peak relay RSS, {USERS:,} users",
            f"{wall.peak_mb:.0f} MB",
            f"{wall.peak_mb / small.peak_mb:.2f} x {SMALL:,} users",
            f"<= {TARGET_MEMORY}",
        ),
        (
            "users swept / failures (1 relay, 50 ms)",
            f"{wall.users} / {wall.failures}",
            "",
            "",
        ),
    ]
    for name, value, ratio, target in rows:
        print(f"{name:<52} {value:>10}  {ratio:>22}  {target}")


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # clean up on SIGTERM too
    main()

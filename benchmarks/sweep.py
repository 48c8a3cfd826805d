"""Sweep benchmark: a task sweep of 10,000 sandbox users against its two bounds.

Run with ``make bench`` or ``.venv/bin/python benchmarks/sweep.py``. By default it runs on
PostgreSQL: a throw-away database on ``BENCH_PG_URL`` (``postgresql://postgres@127.0.0.1:5432/
postgres``), migrated, dropped at the end. ``BENCH_SWEEP_DATABASE=sqlite`` runs the same sweeps
on a throw-away SQLite file instead. ``BENCH_SWEEP_USERS`` (10,000) sets the size;
``BENCH_SWEEP_PROFILE=DIR`` runs the work-floor sweep's relay under cProfile and prints where its
time goes (the ``.prof`` file stays in DIR).

Every process is the product's own: the sandbox standalone (``python -m app sandbox``) with as
many people as users, three sources (the procurement and hr inboxes over Oracle's BPM
worklist, leasing over Yardi); the relays (``python -m app worker``) with the per-integration
concurrency limit at 32 (``HTTP_MAX_CONCURRENCY``); a scheduler (``python -m app scheduler``)
that finishes the runs. A sweep is one manual ``task_sweep`` run for an organisation (as ``POST
/admin/jobs/task_sweep/run`` starts it): the relays fan it out page by page and run each user's
three syncs. Its wall time runs from the run's start to the completion of the last of its
users' deliveries. Each organisation is swept once untimed first (every task is new, so the
first sync also stores a notification per task); the timed sweeps are the steady ones that the
5-minute cron repeats.

- Latency bound: ``N x k x L / C`` per integration: k calls per user at that integration, the
  pages included (Oracle: two worklist listings of one page; Yardi: one call), L = 50 ms,
  C = 32 per relay process. The larger of Oracle's and Yardi's.
- Work floor: the same sweep with the sandbox at 0 ms latency: what the CPUs cost here.
- Target: wall time at most 1.15x the larger of the two bounds. Peak memory (the high-water RSS
  of each relay and of the scheduler) for N/10 and N users: the larger at most 1.2x the smaller.
  Two relay processes: the speed-up over one.

Pools are sized so that two relays, the scheduler and this script stay well under PostgreSQL's
default ``max_connections`` (100), which the machine's other users share.
"""

from __future__ import annotations

import asyncio
import io
import os
import pstats
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The project first, and not this folder, which a script run puts first: its http.py would
# hide the standard library's http from httpx and the app.
sys.path[:] = [str(ROOT), *(p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks")]

from sqlalchemy import delete, func, insert, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from app.core.db import get_database, init_database, session_scope  # noqa: E402
from app.core.settings import DatabaseSettings, get_settings, reset_settings  # noqa: E402
from app.core.tenancy import Organization  # noqa: E402

PG_SERVER = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
DATABASE = os.environ.get("BENCH_SWEEP_DATABASE", "postgresql")
USERS = int(os.environ.get("BENCH_SWEEP_USERS", "10000"))
SMALL = max(1, USERS // 10)
PROFILE_DIR = os.environ.get("BENCH_SWEEP_PROFILE", "")
MEMWATCH_DIR = os.environ.get("BENCH_SWEEP_MEMWATCH", "")
"""Watch every relay's memory: what grew, every ``BENCH_SWEEP_MEMWATCH_SECONDS`` (60), appended
to DIR/<relay>-<time>.txt (see WATCHED_WORKER)."""
MEMWATCH_SECONDS = float(os.environ.get("BENCH_SWEEP_MEMWATCH_SECONDS", "60"))
TRACEMALLOC_FRAMES = int(os.environ.get("BENCH_SWEEP_TRACEMALLOC", "0"))
"""With BENCH_SWEEP_MEMWATCH, also trace allocations with this many frames (slow: 3-10x)."""
CASES = {c.strip() for c in os.environ.get("BENCH_SWEEP_CASES", "").split(",") if c.strip()}
"""Run only these sweeps, by name, comma-separated (``first sync,first sync small,latency,two
relays,small,floor,floor two relays``); every one by default. A steady sweep of an organisation
needs its first sync before it, or it is a first sync itself."""
LATENCY_MS = 50.0
LIMIT = 32
"""The per-integration concurrency limit of each relay process (``HTTP_MAX_CONCURRENCY``)."""
RELAY_CONCURRENCY = 2 * LIMIT
"""Deliveries at once per relay: enough to keep both integrations' 32 slots busy while some
deliveries are between their calls (reading, writing)."""
RELAY_POOL = 12
"""The relay's own pool (``EVENTS_RELAY_POOL_SIZE``): a delivery holds a connection only while
it writes its result, never while it waits on a source."""
PROCESS_POOL, PROCESS_OVERFLOW = 6, 4
"""Each relay's process pool (``DATABASE_POOL_SIZE``/``_MAX_OVERFLOW``): the syncs' short reads."""
ORACLE_CALLS = 2  # procurement and hr each list the user's BPM worklist (one page)
YARDI_CALLS = 1  # leasing lists the user's pending approvals
TARGET_WALL = 1.15
TARGET_MEMORY = 1.2
SYNC_EVENT = "user.sync.task.notifications"
NEVER = "0 0 1 1 *"
"""The crons of the scheduler process: none fires during a run (sweeps are started by hand)."""


PROFILED_WORKER = """
import cProfile, runpy, sys, time
profile = cProfile.Profile(time.process_time)  # CPU time: a busy machine's waits do not count
path, sys.argv = sys.argv[1], ["app", "worker"]
profile.enable()
try:
    runpy.run_module("app", run_name="__main__", alter_sys=True)
except SystemExit:
    pass
finally:
    profile.disable()
    profile.dump_stats(path)
"""
"""``python -m app worker`` under cProfile, timed in CPU seconds (BENCH_SWEEP_PROFILE)."""

WATCHED_WORKER = """
import collections, ctypes, gc, runpy, sys, threading, time, tracemalloc
path, every, frames = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
sys.argv = ["app", "worker"]
if frames:
    tracemalloc.start(frames)


class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]


def malloc_figures():
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = MallInfo2
    except (OSError, AttributeError):
        return "no mallinfo2"
    info = libc.mallinfo2()
    return (f"malloc in use {info.uordblks >> 10} kB, free {info.fordblks >> 10} kB, "
            f"mmap {info.hblkhd >> 10} kB, arena {info.arena >> 10} kB")


def status():
    fields = dict(line.split(":", 1) for line in open("/proc/self/status"))
    return f"RSS {fields['VmRSS'].split()[0]} kB (peak {fields['VmHWM'].split()[0]} kB)"


def kinds():
    return collections.Counter(type(o).__qualname__ for o in gc.get_objects())


def watch():
    first_kinds, first_snapshot = None, None
    while True:
        time.sleep(every)
        now = kinds()
        lines = [f"== {time.strftime('%H:%M:%S')} {status()}; {malloc_figures()}; "
                 f"python blocks {sys.getallocatedblocks()}; gc objects {sum(now.values())}"]
        if first_kinds is None:
            first_kinds = now
        else:
            grown = sorted(((n - first_kinds[k], k) for k, n in now.items()), reverse=True)
            lines.append("objects grown: " + ", ".join(f"{k} {d:+d}" for d, k in grown[:12]))
        if frames:
            snapshot = tracemalloc.take_snapshot().filter_traces(
                [tracemalloc.Filter(False, tracemalloc.__file__)])
            if first_snapshot is None:
                first_snapshot = snapshot
            else:
                for stat in snapshot.compare_to(first_snapshot, "traceback")[:12]:
                    lines.append(f"+{stat.size_diff >> 10} kB ({stat.count_diff:+d} blocks)")
                    lines += ["    " + line for line in stat.traceback.format()[-2 * frames:]]
        with open(path, "a") as out:
            print("\\n".join(lines), file=out, flush=True)


threading.Thread(target=watch, daemon=True).start()
try:
    runpy.run_module("app", run_name="__main__", alter_sys=True)
except SystemExit:
    pass
"""
"""``python -m app worker`` watched (BENCH_SWEEP_MEMWATCH): every interval a thread appends
its RSS, malloc's figures, the Python objects by type that grew since the first look and, with
BENCH_SWEEP_TRACEMALLOC=frames, the allocations that grew by traceback."""


# -- processes -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class Setup:
    url: str
    """The SQLAlchemy URL of the benchmark's database."""
    sandbox_url: str
    scratch: Path
    """Logs, the sandbox's JWT key and (SQLite) the database file."""

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")


def base_env(setup: Setup) -> dict[str, str]:
    prefixes = ("DATABASE_", "EVENTS_", "SANDBOX_", "HTTP_", "SCHEDULER_", "ORACLE_", "YARDI_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env.update(
        DATABASE_URL=setup.url,
        APP_ENV="test",
        APP_LOG_LEVEL="WARNING",
        SANDBOX_PUBLIC_URL=setup.sandbox_url,
        SANDBOX_JWT_KEY_FILE=str(setup.scratch / "sandbox_jwt.pem"),
        SCHEDULER_TASK_SWEEP_CRON=NEVER,
        SCHEDULER_PROFILE_SYNC_CRON=NEVER,
        NOTIFICATIONS_PRUNE_CRON=NEVER,
    )
    return env


def spawn(setup: Setup, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    log = (setup.scratch / f"{name}.log").open("ab")
    return subprocess.Popen(
        [sys.executable, *args], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
    )


def start_sandbox(setup: Setup, latency_ms: float) -> subprocess.Popen[bytes]:
    env = base_env(setup)
    env.update(
        SANDBOX_USERS=str(USERS),
        SANDBOX_LATENCY_MS=str(latency_ms),
        SANDBOX_NEW_TASK_INTERVAL_SECONDS="0",  # the data set stays put: steady sweeps are steady
    )
    port = make_url(setup.sandbox_url).port
    assert port is not None
    process = spawn(setup, "sandbox", ["-m", "app", "sandbox", "--port", str(port)], env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise TimeoutError("the sandbox never answered")


def start_relay(setup: Setup, name: str, *, profile: Path | None = None) -> subprocess.Popen[bytes]:
    env = base_env(setup)
    env.update(
        EVENTS_RELAY_CONCURRENCY=str(RELAY_CONCURRENCY),
        EVENTS_RELAY_BATCH_SIZE=str(LIMIT),
        EVENTS_RELAY_POOL_SIZE=str(RELAY_POOL),
        HTTP_MAX_CONCURRENCY=str(LIMIT),
        DATABASE_POOL_SIZE=str(PROCESS_POOL),
        DATABASE_MAX_OVERFLOW=str(PROCESS_OVERFLOW),
    )
    args = ["-m", "app", "worker"]
    if profile is not None:
        args = ["-c", PROFILED_WORKER, str(profile)]
    elif MEMWATCH_DIR:
        Path(MEMWATCH_DIR).mkdir(parents=True, exist_ok=True)
        dump = Path(MEMWATCH_DIR) / f"{name}-{time.strftime('%H%M%S')}.txt"
        args = ["-c", WATCHED_WORKER, str(dump), str(MEMWATCH_SECONDS), str(TRACEMALLOC_FRAMES)]
    return spawn(setup, name, args, env)


def start_scheduler(setup: Setup) -> subprocess.Popen[bytes]:
    env = base_env(setup)
    env.update(DATABASE_POOL_SIZE="2", DATABASE_MAX_OVERFLOW="2")
    return spawn(setup, "scheduler", ["-m", "app", "scheduler"], env)


def peak_rss_mb(process: subprocess.Popen[bytes]) -> float:
    """The process's high-water resident set (VmHWM), in MB."""
    for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc (Linux only)")


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def ready(setup: Setup, relays: list[subprocess.Popen[bytes]]) -> None:
    """Wait until every relay claims: LISTENing on PostgreSQL, the database open on SQLite."""
    deadline = time.monotonic() + 120
    while True:
        if any(relay.poll() is not None for relay in relays):
            raise RuntimeError(f"a relay exited; see {setup.scratch}")
        if setup.is_sqlite:
            database = str(make_url(setup.url).database)
            if all(_has_open(relay.pid, database) for relay in relays):
                return
        else:
            async with session_scope() as session:
                listening = await session.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                        " AND query ILIKE 'LISTEN%workflow_hub_outbox%'"
                    )
                )
            if int(listening or 0) >= len(relays):
                return
        if time.monotonic() > deadline:
            raise TimeoutError("the relays never started claiming")
        await asyncio.sleep(0.1)


def _has_open(pid: int, path: str) -> bool:
    try:
        return any(os.readlink(fd) == path for fd in Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False


# -- the data --------------------------------------------------------------------------------


async def create_organization(name: str, users: int) -> uuid.UUID:
    """An organisation of the sandbox's first ``users`` people, connected to the sandbox."""
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
    relay_mb: float
    """The largest relay's high-water RSS."""
    scheduler_mb: float
    deliveries: int
    """Every delivery the sweep caused (its users' syncs and what they published)."""
    cpu: dict[str, float]
    """CPU seconds the sweep cost each party: the relays, the sandbox, PostgreSQL's backends."""


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def backend_cpu(setup: Setup) -> dict[int, float]:
    """CPU time of each PostgreSQL backend serving the benchmark's database, by pid."""
    if setup.is_sqlite:
        return {}
    async with session_scope() as session:
        pids = await session.scalars(
            text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        )
        return {pid: cpu_seconds(pid) for pid in pids}


async def sweep(
    setup: Setup,
    *,
    organization_id: uuid.UUID,
    relays: int,
    sandbox: subprocess.Popen[bytes],
    profile: Path | None = None,
) -> Sweep:
    from app.events.outbox.models import OutboxDelivery, OutboxEvent
    from app.scheduler import repository, service
    from app.scheduler.catalog import get_job

    async with session_scope() as session:  # each sweep starts from an empty outbox
        await session.execute(delete(OutboxDelivery))
        await session.execute(delete(OutboxEvent))
    workers = [
        start_relay(setup, f"relay{n}", profile=profile if n == 0 else None) for n in range(relays)
    ]
    scheduler = start_scheduler(setup)
    try:
        await ready(setup, workers)
        job = get_job("task_sweep")
        assert job is not None
        relay_cpu = {w.pid: cpu_seconds(w.pid) for w in workers}
        sandbox_cpu = cpu_seconds(sandbox.pid)
        database_cpu = await backend_cpu(setup)
        async with session_scope() as session:
            run_id = await service.run_now(
                session, job=job, organization_id=organization_id, requested_by_user_id=None
            )
        # The scheduler process finishes the run (every SCHEDULER_RECONCILE_SECONDS); the wall
        # time is read from the deliveries themselves, not from when this loop notices.
        started = time.monotonic()
        while True:
            await asyncio.sleep(0.5)
            async with session_scope() as session:
                run = await repository.get_run(session, run_id)
                assert run is not None
            if run.status != "running":
                break
            if scheduler.poll() is not None or any(w.poll() is not None for w in workers):
                raise RuntimeError(f"a process exited mid-sweep; see {setup.scratch}")
            if time.monotonic() - started > 7200:
                raise TimeoutError("the sweep stalled")
        # Every delivery the sweep caused is done (a user's first sync also stores notifications).
        while True:
            async with session_scope() as session:
                still_open = await session.scalar(
                    select(func.count())
                    .select_from(OutboxDelivery)
                    .where(OutboxDelivery.status.in_(("pending", "running")))
                )
            if not still_open:
                break
            await asyncio.sleep(0.5)
        async with session_scope() as session:
            last = await session.scalar(
                select(func.max(OutboxDelivery.completed_at))
                .join(OutboxEvent, OutboxEvent.id == OutboxDelivery.event_id)
                .where(OutboxEvent.name == SYNC_EVENT)
            )
            deliveries = await session.scalar(select(func.count()).select_from(OutboxDelivery))
        assert last is not None
        database_after = await backend_cpu(setup)
        cpu = {
            "relays": sum(cpu_seconds(w.pid) - relay_cpu[w.pid] for w in workers),
            "sandbox": cpu_seconds(sandbox.pid) - sandbox_cpu,
            "database": sum(t - database_cpu.get(pid, 0.0) for pid, t in database_after.items()),
        }
        return Sweep(
            seconds=(last - run.started_at).total_seconds(),
            users=run.users,
            failures=run.failures,
            relay_mb=max(peak_rss_mb(worker) for worker in workers),
            scheduler_mb=peak_rss_mb(scheduler),
            deliveries=int(deliveries or 0),
            cpu=cpu,
        )
    finally:
        stop([*workers, scheduler])


# -- the run ---------------------------------------------------------------------------------


def print_profile(path: Path) -> None:
    """Where the profiled relay spent its time: the top functions, by own and by total time."""
    for order, count in (("tottime", 25), ("cumulative", 40)):
        out = io.StringIO()
        stats = pstats.Stats(str(path), stream=out)
        stats.strip_dirs().sort_stats(order).print_stats(count)
        print(f"\n-- relay profile of the work-floor sweep, by {order} ({path}) --")
        lines = out.getvalue().splitlines()
        start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
        print("\n".join(lines[start:]))


async def run(setup: Setup) -> dict[str, Sweep]:
    from app.events.runtime import set_emitter
    from app.runtime import build_emitter

    os.environ.update(base_env(setup))
    reset_settings()
    settings = get_settings()
    init_database(DatabaseSettings(url=setup.url, pool_size=2, max_overflow=2))
    emitter = build_emitter(settings)  # the jobs' catalog too (the sweep's JobSpec)
    set_emitter(emitter)  # run_now publishes the run's start, as the admin route does
    emitter.mark_ready()
    large = await create_organization("Bench large", USERS)
    small = await create_organization("Bench small", SMALL)
    profile = Path(PROFILE_DIR) / "relay-floor.prof" if PROFILE_DIR else None
    if profile is not None:
        profile.parent.mkdir(parents=True, exist_ok=True)
    results: dict[str, Sweep] = {}
    # The one-relay figures first (the targets), the two-relay ones last: a long run stopped
    # early still has what the targets need.
    plan: list[tuple[float, list[tuple[str, uuid.UUID, int]]]] = [
        (
            LATENCY_MS,
            [
                ("first sync", large, 1),
                ("first sync small", small, 1),
                ("latency", large, 1),
                ("small", small, 1),
            ],
        ),
        (0.0, [("floor", large, 1)]),
        (LATENCY_MS, [("two relays", large, 2)]),
        (0.0, [("floor two relays", large, 2)]),
    ]
    for latency, cases in plan:
        cases = [case for case in cases if not CASES or case[0] in CASES]
        if not cases:
            continue
        sandbox = start_sandbox(setup, latency)
        try:
            for name, organization_id, relays in cases:
                results[name] = await sweep(
                    setup,
                    organization_id=organization_id,
                    relays=relays,
                    sandbox=sandbox,
                    profile=profile if name == "floor" else None,
                )
                print(f"  {name}: {results[name]}", file=sys.stderr, flush=True)
        finally:
            stop([sandbox])
    await get_database().dispose()
    return results


def report(results: dict[str, Sweep], backend: str) -> bool:
    """Print every figure with its ratio and verdict; False when a target was missed."""
    latency_s = LATENCY_MS / 1000
    oracle_bound = USERS * ORACLE_CALLS * latency_s / LIMIT
    yardi_bound = USERS * YARDI_CALLS * latency_s / LIMIT
    latency_bound = max(oracle_bound, yardi_bound)
    load = os.getloadavg()
    print(
        f"{backend}: task sweep of {USERS:,} users; sandbox in its own process at "
        f"{LATENCY_MS:.0f} ms; per-integration limit {LIMIT} per relay; relay concurrency "
        f"{RELAY_CONCURRENCY}; load average at the end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    rows: list[tuple[str, str, str, str]] = [
        (f"latency bound, Oracle: {USERS} x {ORACLE_CALLS} x {latency_s} s / {LIMIT}",
         f"{oracle_bound:.1f} s", "", ""),
        (f"latency bound, Yardi: {USERS} x {YARDI_CALLS} x {latency_s} s / {LIMIT}",
         f"{yardi_bound:.1f} s", "", ""),
    ]  # fmt: skip
    wall, floor = results.get("latency"), results.get("floor")
    small, first = results.get("small"), results.get("first sync")
    bound = max(latency_bound, floor.seconds if floor else 0.0)
    if floor is not None:
        binds = "latency" if latency_bound >= floor.seconds else "work floor"
        rows += [
            ("work floor: same sweep, sandbox at 0 ms, 1 relay", f"{floor.seconds:.1f} s",
             f"{floor.seconds / latency_bound:.2f} x latency bound", ""),
            (f"bound: the larger ({binds} binds)", f"{bound:.1f} s", "", ""),
        ]  # fmt: skip
    if wall is not None:
        ratio = wall.seconds / bound
        rows.append(
            ("sweep at 50 ms, 1 relay", f"{wall.seconds:.1f} s", f"{ratio:.2f} x bound",
             _verdict(ratio, TARGET_WALL) if floor else "(no work floor measured)")
        )  # fmt: skip
    for name, base in (("two relays", wall), ("floor two relays", floor)):
        two = results.get(name)
        if two is not None and base is not None:
            rows.append(
                (f"{'sweep at 50 ms' if base is wall else 'work floor'}, 2 relays",
                 f"{two.seconds:.1f} s", f"{base.seconds / two.seconds:.2f} x speed-up", "")
            )  # fmt: skip
    if first is not None:
        rows.append(
            ("first sync at 50 ms, 1 relay (every task new)", f"{first.seconds:.1f} s",
             f"{first.seconds / bound:.2f} x bound", "(informative)")
        )  # fmt: skip
    large = wall or first
    small_one = small or results.get("first sync small")
    if large is not None and small_one is not None:
        for party, big, little in (
            ("relay", large.relay_mb, small_one.relay_mb),
            ("scheduler", large.scheduler_mb, small_one.scheduler_mb),
        ):
            ratio = big / little
            rows += [
                (f"peak {party} RSS, {SMALL:,} users", f"{little:.0f} MB", "", ""),
                (f"peak {party} RSS, {USERS:,} users", f"{big:.0f} MB",
                 f"{ratio:.2f} x {SMALL:,} users", _verdict(ratio, TARGET_MEMORY)),
            ]  # fmt: skip
    for name, case in (("work floor", floor), ("sweep at 50 ms", wall), ("first sync", first)):
        if case is None:
            continue
        total = sum(case.cpu.values())
        parts = " + ".join(f"{party} {1000 * t / USERS:.1f}" for party, t in case.cpu.items())
        rows.append((f"CPU per user, {name} ({case.deliveries / USERS:.0f} deliveries)",
                     f"{1000 * total / USERS:.1f} ms", f"{parts} ms", ""))  # fmt: skip
    for label, case in results.items():
        expected = SMALL if "small" in label else USERS
        rows.append(
            (f"users swept / failures: {label}", f"{case.users} / {case.failures}", "",
             "PASS" if case.users == expected and case.failures == 0 else "MISS")
        )  # fmt: skip
    print(f"{'figure':<60} {'value':>10}  {'ratio':>26}  target")
    print("-" * 118)
    for name, value, shown, target in rows:
        print(f"{name:<60} {value:>10}  {shown:>26}  {target}")
    return all(not row[3].startswith("MISS") for row in rows)


def _verdict(ratio: float, target: float) -> str:
    return f"{'PASS' if ratio <= target else 'MISS'} (<= {target})"


async def _admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_SERVER)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def main() -> int:
    from app.core import migrations

    scratch = Path(tempfile.mkdtemp(prefix="wfh-bench-sweep-"))
    sandbox_url = f"http://127.0.0.1:{free_port()}/sandbox"
    database = f"wfh_bench_sweep_{os.getpid()}"
    if DATABASE == "sqlite":
        url = f"sqlite+aiosqlite:///{scratch / 'bench.db'}"
        backend = "SQLite"
    else:
        url = (
            make_url(PG_SERVER)
            .set(drivername="postgresql+asyncpg", database=database)
            .render_as_string(False)
        )
        backend = "PostgreSQL"
        asyncio.run(_admin(f'CREATE DATABASE "{database}"'))
    setup = Setup(url=url, sandbox_url=sandbox_url, scratch=scratch)
    try:
        migrations.upgrade(url)
        results = asyncio.run(run(setup))
        ok = report(results, backend)
        print("every target met" if ok else "a target was MISSED")
        if PROFILE_DIR and "floor" in results:
            print_profile(Path(PROFILE_DIR) / "relay-floor.prof")
        shutil.rmtree(scratch, ignore_errors=True)
        return 0
    except BaseException:
        print(f"process logs kept in {scratch}", file=sys.stderr)
        raise
    finally:
        if DATABASE != "sqlite":
            asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # clean up on SIGTERM too
    sys.exit(main())

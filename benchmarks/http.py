"""HTTP benchmark: the product's authenticated reads against bare endpoints doing the same SQL.

Run with ``make bench`` or ``.venv/bin/python benchmarks/http.py``. It builds a throw-away
database (PostgreSQL on ``BENCH_PG_URL``, default ``postgresql://postgres@127.0.0.1:5432/
postgres``; ``BENCH_HTTP_DATABASE=sqlite`` for a SQLite file, ``both`` for one after the
other), seeds a user with ``BENCH_TASKS`` (500) pending procurement tasks and 1,000
notifications, and serves the app with uvicorn in its own process (``python benchmarks/http.py
serve``, the product's own uvicorn options), so the load generator never competes with the
server's event loop.

The server's app is the product's ``create_app()`` beside a bare FastAPI app, dispatched by
path in the same process (``/bare/...``): no middleware, no dependencies, no response models.
A bare route runs, on a session of the same database and pool, the very SQL statements that
the product's route ran for the same request (captured once, from a product request made
in-process with the same token), in one transaction, and answers the rows as JSON. What the
product adds on top (the auth dependency and its session check, the problem and limit
middleware, the transaction per request, ORM rows and pydantic models) is what the ratio
measures.

``BENCH_HTTP_CLIENTS`` (16) httpx clients send requests with keep-alive, as many as they can,
over loopback. The cases take turns, ``BENCH_HTTP_ROUNDS`` (5) rounds of ``BENCH_HTTP_REQUESTS``
(400) requests each; requests per second is the median over the rounds, p50 and p99 are over
every request of the case. The server's CPU time per request (from /proc) is printed beside
them: it does not move with the load of a shared machine as much as the rates do.

Target: the product's requests per second at least 0.8x the bare endpoint's, for each route.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

# Run as a script, this file's folder comes first on the path, and this file's name would hide
# the standard library's ``http`` from httpx, uvicorn and the app: the project's root takes
# its place (none of the modules above imports ``http``).
ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [str(ROOT), *(p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks")]

import httpx  # noqa: E402
from fastapi import Request, Response  # noqa: E402  (resolved by FastAPI at run time)

PG_SERVER = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
DATABASES = os.environ.get("BENCH_HTTP_DATABASE", "postgresql")
CLIENTS = int(os.environ.get("BENCH_HTTP_CLIENTS", "16"))
ROUNDS = int(os.environ.get("BENCH_HTTP_ROUNDS", "5"))
REQUESTS = int(os.environ.get("BENCH_HTTP_REQUESTS", "400"))
TASKS = int(os.environ.get("BENCH_TASKS", "500"))
NOTIFICATIONS = 1000
UNREAD = sum(1 for n in range(NOTIFICATIONS) if n % 4 and n % 10)
TARGET = 0.8
EMAIL = "bench-http@example.com"
PASSWORD = "bench-password-1"
API = "/api/v1"
ROUTES = {
    "tasks": f"{API}/procurement/tasks",
    "unread": f"{API}/notifications/unread-count",
}
"""The product's routes; the bare ones are ``/bare/<name>``."""

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


# -- the server (python benchmarks/http.py serve) ---------------------------------------------


@dataclass
class Capture:
    """The SQL one product request ran, recorded to be replayed by its bare twin."""

    statements: list[tuple[str, Any]] = field(default_factory=list)


capturing: ContextVar[Capture | None] = ContextVar("capturing", default=None)


def bench_app() -> Any:
    """The product's app and the bare routes, dispatched by path in one ASGI callable."""
    from fastapi import FastAPI
    from sqlalchemy import event

    from app.core.db import get_database
    from app.main import create_app

    product = create_app()
    captured: dict[str, Capture] = {}
    lock = asyncio.Lock()

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        capture = capturing.get()
        if capture is not None:
            capture.statements.append((statement, parameters))

    async def capture_of(name: str, authorization: str) -> Capture:
        """The statements of the product's route ``name``, from one in-process request."""
        async with lock:
            if name not in captured:
                engine = get_database().engine.sync_engine
                event.listen(engine, "before_cursor_execute", record)
                capture = Capture()
                token = capturing.set(capture)
                try:
                    transport = httpx.ASGITransport(app=product)
                    async with httpx.AsyncClient(transport=transport, base_url="http://x") as c:
                        answer = await c.get(ROUTES[name], headers={"Authorization": authorization})
                    answer.raise_for_status()
                finally:
                    capturing.reset(token)
                    event.remove(engine, "before_cursor_execute", record)
                captured[name] = capture
            return captured[name]

    bare = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @bare.get("/bare/{name}")
    async def replay(name: str, request: Request) -> Response:
        capture = await capture_of(name, request.headers["authorization"])
        rows: list[Any] = []
        async with get_database().sessionmaker() as session, session.begin():
            connection = await session.connection()
            for statement, parameters in capture.statements:
                result = await connection.exec_driver_sql(statement, parameters)
                rows = [list(row) for row in result.all()] if result.returns_rows else []
        return Response(json.dumps({"rows": rows}, default=str), media_type="application/json")

    @bare.get("/bare/{name}/statements")
    async def statements(name: str) -> list[str]:
        return [statement for statement, _ in captured[name].statements]

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/bare/"):
            await bare(scope, receive, send)
        else:  # the product, its lifespan included (it opens the database both use)
            await product(scope, receive, send)

    return app


def serve(port: int) -> None:
    import uvicorn

    from app.cli import server_options
    from app.core.settings import get_settings

    options = {**server_options(get_settings()), "host": "127.0.0.1", "port": port}
    options.update(access_log=False, limit_concurrency=None)
    uvicorn.run(bench_app(), **options)


# -- the data --------------------------------------------------------------------------------


async def seed(url: str) -> None:
    """An employee with ``TASKS`` pending procurement tasks and ``NOTIFICATIONS`` notifications."""
    from sqlalchemy import insert, text, update

    from app.core.db import close_database, get_database, init_database, session_scope, utcnow
    from app.core.settings import DatabaseSettings, get_settings
    from app.core.tenancy import Organization
    from app.events.runtime import set_emitter
    from app.modules.notification.models import Notification
    from app.modules.procurement.models import ProcurementInbox, ProcurementTask
    from app.modules.user import service
    from app.runtime import build_emitter

    init_database(DatabaseSettings(url=url))
    emitter = build_emitter(get_settings())
    set_emitter(emitter)
    emitter.mark_ready()
    async with session_scope() as session:
        organization = Organization(name="Bench HTTP")
        session.add(organization)
        await session.flush()
        user = await service.create_user(
            session,
            settings=get_settings(),
            organization_id=organization.id,
            email=EMAIL,
            password=PASSWORD,
            oracle_username="EMMA.EMPLOYEE",
        )
        org, user_id = organization.id, user.id
    now = utcnow()
    tasks = [
        {
            "id": uuid.uuid4(),
            "organization_id": org,
            "user_id": user_id,
            "task_id": str(900_000 + n),
            "title": f"Approval of Requisition {n}",
            "summary": "From Olivia Brown",
            "status": "pending",
            "priority": n % 5,
            "assigned_at": now - timedelta(minutes=n),
            "sort_at": now - timedelta(minutes=n),
            "synced_at": now,
            "created_at": now,
            "updated_at": now,
        }
        for n in range(TASKS)
    ]
    notifications = [
        {
            "id": uuid.uuid4(),
            "organization_id": org,
            "user_id": user_id,
            "kind": "task.received",
            "module": ("procurement", "hr", "leasing")[n % 3],
            "task_id": f"T{n}",
            "title": f"Task {n}",
            "created_at": now,
            "push_status": "sent",
            "read_at": now if n % 4 == 0 else None,
            "resolved_at": now if n % 10 == 0 else None,
        }
        for n in range(NOTIFICATIONS)
    ]
    async with session_scope() as session:
        await session.execute(insert(ProcurementTask), tasks)
        await session.execute(insert(Notification), notifications)
        await session.execute(  # the inbox the user's creation opened, as synced now
            update(ProcurementInbox)
            .where(ProcurementInbox.user_id == user_id)
            .values(synced_at=now)
        )
    database = get_database()
    async with database.engine.connect() as conn:  # what autovacuum leaves: statistics
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("ANALYZE" if database.is_sqlite else "VACUUM ANALYZE"))
    await close_database()


# -- the load --------------------------------------------------------------------------------


@dataclass
class Case:
    name: str
    path: str
    check: Callable[[Any], bool]
    rates: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    server_cpu: list[float] = field(default_factory=list)
    """Server CPU seconds per request, each round."""
    client_cpu: list[float] = field(default_factory=list)

    def rps(self) -> float:
        return statistics.median(self.rates)

    def quantile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def burst(client: httpx.AsyncClient, case: Case, headers: dict[str, str], pid: int) -> None:
    """``REQUESTS`` requests of one case from ``CLIENTS`` concurrent clients."""
    left = REQUESTS
    latencies: list[float] = []

    async def one_client() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            started = time.perf_counter()
            answer = await client.get(case.path, headers=headers)
            latencies.append(time.perf_counter() - started)
            if answer.status_code != 200 or not case.check(answer.json()):
                raise RuntimeError(f"{case.name}: {answer.status_code} {answer.text[:300]}")

    server_before, client_before = cpu_seconds(pid), time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(one_client() for _ in range(CLIENTS)))
    elapsed = time.perf_counter() - started
    case.rates.append(REQUESTS / elapsed)
    case.latencies.extend(latencies)
    case.server_cpu.append((cpu_seconds(pid) - server_before) / REQUESTS)
    case.client_cpu.append((time.process_time() - client_before) / elapsed)


def _page(body: Any) -> bool:
    return body["total"] == TASKS and len(body["items"]) == 50


def _bare_page(body: Any) -> bool:
    return len(body["rows"]) == 50


def _count(body: Any) -> bool:
    return bool(body["count"] == UNREAD)


def _bare_count(body: Any) -> bool:
    return bool(body["rows"] == [[UNREAD]])


async def load(base: str, pid: int) -> list[Case]:
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
        login = await client.post(f"{API}/auth/login", json={"email": EMAIL, "password": PASSWORD})
        login.raise_for_status()
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        cases = [
            Case("GET /procurement/tasks", ROUTES["tasks"], _page),
            Case("bare: same SQL", "/bare/tasks", _bare_page),
            Case("GET /notifications/unread-count", ROUTES["unread"], _count),
            Case("bare: same SQL", "/bare/unread", _bare_count),
        ]
        for case in cases:  # warm-up (and the bare routes' capture)
            for _ in range(20):
                answer = await client.get(case.path, headers=headers)
                if answer.status_code != 200 or not case.check(answer.json()):
                    raise RuntimeError(f"{case.name}: {answer.status_code} {answer.text[:300]}")
        for round_ in range(ROUNDS):
            shift = round_ % len(cases)
            for case in cases[shift:] + cases[:shift]:
                await burst(client, case, headers, pid)
        for name in ("tasks", "unread"):
            shown = await client.get(f"/bare/{name}/statements")
            print(f"  SQL of {ROUTES[name]}: {len(shown.json())} statement(s)", file=sys.stderr)
    return cases


# -- the run ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def server(url: str, scratch: Path) -> Iterator[tuple[str, int]]:
    """Serve :func:`bench_app` with uvicorn in a process of its own; yield its URL and pid."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "EVENTS_"))}
    env.update(
        DATABASE_URL=url,
        APP_ENV="test",
        APP_LOG_LEVEL="WARNING",
        EVENTS_RELAY_ENABLED="false",
        SCHEDULER_ENABLED="false",
        SANDBOX_ENABLED="false",
        SANDBOX_JWT_KEY_FILE=str(scratch / "sandbox_jwt.pem"),
    )
    log = (scratch / "server.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.http", "serve", str(port)],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start; see {scratch / 'server.log'}")
            time.sleep(0.1)
        yield base, process.pid
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run(url: str, scratch: Path) -> list[Case]:
    from app.core import migrations
    from app.core.settings import reset_settings

    os.environ.update(
        DATABASE_URL=url,
        APP_ENV="test",
        APP_LOG_LEVEL="WARNING",
        EVENTS_RELAY_ENABLED="false",
        SANDBOX_JWT_KEY_FILE=str(scratch / "sandbox_jwt.pem"),
    )
    reset_settings()
    migrations.upgrade(url)
    asyncio.run(seed(url))
    with server(url, scratch) as (base, pid):
        return asyncio.run(load(base, pid))


def report(backend: str, cases: list[Case]) -> bool:
    load = os.getloadavg()
    print(
        f"{backend}: {CLIENTS} concurrent httpx clients against uvicorn in its own process, "
        f"{ROUNDS} rounds of {REQUESTS} requests per case; load average at the end "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    print(
        f"{'case':<34} {'req/s':>8} {'p50':>8} {'p99':>8} {'server CPU/req':>15} "
        f"{'client CPU':>11}  {'ratio':<20} target"
    )
    print("-" * 124)
    ok = True
    for product, bare in (cases[0:2], cases[2:4]):
        ratio = product.rps() / bare.rps()
        cpu_ratio = statistics.median(product.server_cpu) / statistics.median(bare.server_cpu)
        passed = ratio >= TARGET
        ok = ok and passed
        for case, ratio_text, target in (
            (product, f"{ratio:.2f} x bare req/s", f"{'PASS' if passed else 'MISS'} (>= {TARGET})"),
            (bare, f"{cpu_ratio:.2f} x CPU/req", ""),
        ):
            print(
                f"{case.name:<34} {case.rps():>8.0f} {case.quantile(0.5) * 1e3:>6.1f}ms "
                f"{case.quantile(0.99) * 1e3:>6.1f}ms "
                f"{statistics.median(case.server_cpu) * 1e3:>13.2f}ms "
                f"{statistics.median(case.client_cpu):>10.0%}  {ratio_text:<20} {target}"
            )
    return ok


async def pg_database() -> str:
    import asyncpg
    from sqlalchemy.engine import make_url

    name = f"wfh_bench_http_{os.getpid()}"
    conn = await asyncpg.connect(PG_SERVER)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    server_url = make_url(PG_SERVER)
    return server_url.set(drivername="postgresql+asyncpg", database=name).render_as_string(False)


async def drop_pg(url: str) -> None:
    import asyncpg
    from sqlalchemy.engine import make_url

    conn = await asyncpg.connect(PG_SERVER)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')
    finally:
        await conn.close()


def main() -> int:
    ok = True
    wanted = ("sqlite", "postgresql") if DATABASES == "both" else (DATABASES,)
    for backend in wanted:
        with tempfile.TemporaryDirectory(prefix="wfh-bench-http-") as tmp:
            scratch = Path(tmp)
            if backend == "sqlite":
                cases = run(f"sqlite+aiosqlite:///{tmp}/bench.db", scratch)
                ok = report("SQLite", cases) and ok
                continue
            url = asyncio.run(pg_database())
            try:
                ok = report("PostgreSQL", run(url, scratch)) and ok
            finally:
                asyncio.run(drop_pg(url))
    print("every target met" if ok else "a target was MISSED")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        serve(int(sys.argv[2]))
    else:
        sys.exit(main())

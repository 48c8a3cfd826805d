"""Notification benchmark: a push to 10 devices, and the unread count at 10,000 notifications.

Run with ``make bench`` or ``.venv/bin/python benchmarks/notifications.py``. It builds a
throw-away SQLite database with our migrations (and a PostgreSQL one on ``BENCH_PG_URL``, default
``postgresql://postgres@127.0.0.1:5432/postgres``, when a server answers), and serves the
sandbox's fake FCM on a loopback port, so firebase-admin sends over real HTTP.

- Push: the durable push delivery for one new task of a user with 10 active devices, in a
  transaction on the relay's pool as the relay runs it (load the push with its user's
  preferences and devices, then its notifications; one firebase-admin call; mark them sent;
  commit),
  against the bare baseline: one ``send_each_for_multicast_async`` of the same message to the
  same 10 tokens through the same firebase-admin app. Target (issue 14): <= 1.3x.
- Unread count: ``GET /notifications/unread-count``'s query through the module (a session, the
  repository) for a user with 10,000 notifications among 30,000, against one bare
  ``SELECT count(*)`` on the partial index through the same engine. Target: <= 1.3x.

Each figure is the median of rounds in which the two cases take turns, so a busy shared
machine moves them alike; read the ratios.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# The project first, and not this folder, which a script run puts first: its http.py would
# hide the standard library's http from httpx and the app.
sys.path[:] = [str(ROOT), *(p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks")]

import asyncpg  # noqa: E402
import uvicorn  # noqa: E402
from firebase_admin import messaging  # noqa: E402
from sqlalchemy import Uuid, bindparam, insert, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.routing import Mount  # noqa: E402

from app.core import migrations  # noqa: E402
from app.core.db import Database, transaction, utcnow  # noqa: E402
from app.core.settings import DatabaseSettings, SandboxSettings  # noqa: E402
from app.core.tenancy import Organization  # noqa: E402
from app.events.outbox.relay import relay_database  # noqa: E402
from app.integrations.fcm import FirebasePushGateway, StaticTokenCredential  # noqa: E402
from app.modules.notification import repository, service  # noqa: E402
from app.modules.notification.models import Device, Notification, Push  # noqa: E402
from app.sandbox import build_sandbox  # noqa: E402

PG_SERVER = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
DEVICES = 10
NOTIFICATIONS = 10_000
ROUNDS = int(os.environ.get("BENCH_NOTIFICATION_ROUNDS", "15"))
PUSHES_PER_ROUND = 5
COUNTS_PER_ROUND = 50
TARGET = 1.3
UNREAD_SQL = (
    "SELECT count(*) FROM notifications "
    "WHERE user_id = :user AND read_at IS NULL AND resolved_at IS NULL"
)


class SandboxServer:
    """The sandbox's fake FCM on a loopback port, in a thread with its own event loop."""

    def __init__(self) -> None:
        sandbox = build_sandbox(
            SandboxSettings(users=10, jwt_key_file=Path(tempfile.gettempdir()) / "bench_jwt.pem")
        )
        self.state = sandbox.state
        app = Starlette(routes=[Mount("/sandbox", sandbox.app)])
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> str:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/sandbox"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


async def interleaved(
    cases: dict[str, Callable[[], Awaitable[Any]]], number: int
) -> dict[str, float]:
    """Median seconds per call of each case, the cases taking turns in every round."""
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for fn in cases.values():  # warm-up
        await fn()
    for round_ in range(ROUNDS):
        names = list(cases)
        names = names[round_ % len(names) :] + names[: round_ % len(names)]
        for name in names:
            started = time.perf_counter()
            for _ in range(number):
                await cases[name]()
            samples[name].append((time.perf_counter() - started) / number)
    return {name: statistics.median(values) for name, values in samples.items()}


async def seed_user(database: Database) -> tuple[uuid.UUID, uuid.UUID]:
    """An organisation and a user; return their ids."""
    async with database.sessionmaker() as session, session.begin():
        organization = Organization(name=f"Bench {uuid.uuid4().hex[:8]}")
        session.add(organization)
        await session.flush()
        return organization.id, uuid.uuid4()


async def bench_push(database: Database, gateway: FirebasePushGateway) -> tuple[float, float]:
    org, user = await seed_user(database)
    relay_db = relay_database(database, concurrency=1)
    tokens = [f"bench-device-{n:02d}-{uuid.uuid4().hex}" for n in range(DEVICES)]
    async with database.sessionmaker() as session, session.begin():
        session.add_all(
            Device(
                organization_id=org,
                user_id=user,
                token=token,
                token_digest=uuid.uuid4().hex,
                platform="android",
            )
            for token in tokens
        )
    counter = iter(range(10**9))

    async def ours() -> None:
        # What the inbox's sync left behind: one new notification in a push that is now due.
        n = next(counter)
        push_id = uuid.uuid4()
        async with database.sessionmaker() as session, session.begin():
            now = utcnow()
            session.add(Push(id=push_id, organization_id=org, user_id=user, due_at=now))
            await session.flush()
            session.add(
                Notification(
                    organization_id=org,
                    user_id=user,
                    module="procurement",
                    task_id=f"T{n}",
                    title=f"Requisition {n}",
                    body="Laptops, 3,450.00 USD",
                    push_id=push_id,
                )
            )
        started = time.perf_counter()
        # The relay's delivery transaction, on the relay's own pool (no pre-ping on PostgreSQL):
        # the listener's session_scope() joins it.
        async with relay_db.sessionmaker() as session, transaction(session):
            sent = await service.send_due_push(
                session,
                push_id=push_id,
                gateway=gateway,
                idempotency_key=f"{uuid.uuid4()}:notification.push",
            )
        assert sent is not None
        assert sent.delivered == DEVICES
        timings["ours"].append(time.perf_counter() - started)

    async def bare() -> None:
        n = next(counter)
        started = time.perf_counter()
        response = await messaging.send_each_for_multicast_async(
            messaging.MulticastMessage(
                tokens=tokens,
                notification=messaging.Notification(
                    title=f"Requisition {n}", body="Laptops, 3,450.00 USD"
                ),
                data={"kind": "task", "task_id": f"T{n}", "idempotency_key": str(uuid.uuid4())},
                android=messaging.AndroidConfig(collapse_key=f"push-{n}"),
                apns=messaging.APNSConfig(headers={"apns-collapse-id": f"push-{n}"}),
            ),
            app=gateway.app,
        )
        assert response.success_count == DEVICES
        timings["bare"].append(time.perf_counter() - started)

    timings: dict[str, list[float]] = {"ours": [], "bare": []}
    try:
        await interleaved({"ours": ours, "bare": bare}, PUSHES_PER_ROUND)
    finally:
        if relay_db is not database:
            await relay_db.dispose()
    return statistics.median(timings["ours"]), statistics.median(timings["bare"])


async def bench_unread(database: Database) -> tuple[float, float, str]:
    org, user = await seed_user(database)
    others = [uuid.uuid4(), uuid.uuid4()]
    now = utcnow()
    rows = [
        {
            "id": uuid.uuid4(),
            "organization_id": org,
            "user_id": owner,
            "kind": "task.received",
            "module": ("procurement", "hr", "leasing")[n % 3],
            "task_id": f"T{n}",
            "title": f"Task {n}",
            "created_at": now,
            "push_status": "sent",
            # A quarter read, a tenth resolved: the count must skip them.
            "read_at": now if n % 4 == 0 else None,
            "resolved_at": now if n % 10 == 0 else None,
        }
        for owner in (user, *others)
        for n in range(NOTIFICATIONS)
    ]
    async with database.engine.begin() as conn:
        for start in range(0, len(rows), 2000):
            await conn.execute(insert(Notification), rows[start : start + 2000])
    # What autovacuum (PostgreSQL) or a periodic ANALYZE (SQLite) leaves: statistics, and on
    # PostgreSQL a visibility map, so the count reads the partial index alone.
    async with database.engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(
            text("ANALYZE" if database.is_sqlite else "VACUUM ANALYZE notifications")
        )
    expected = sum(1 for n in range(NOTIFICATIONS) if n % 4 and n % 10)

    async def ours() -> None:
        async with database.sessionmaker() as session:
            assert await repository.unread_count(session, user) == expected

    bare_sql = text(UNREAD_SQL).bindparams(bindparam("user", type_=Uuid()))

    async def bare() -> None:
        async with database.engine.connect() as conn:
            result = await conn.execute(bare_sql, {"user": user})
            assert result.scalar_one() == expected

    medians = await interleaved({"ours": ours, "bare": bare}, COUNTS_PER_ROUND)
    explain = "EXPLAIN QUERY PLAN " if database.is_sqlite else "EXPLAIN "
    async with database.engine.connect() as conn:
        query = text(explain + UNREAD_SQL).bindparams(bindparam("user", type_=Uuid()))
        plan = (await conn.execute(query, {"user": user})).all()
    return medians["ours"], medians["bare"], " / ".join(str(r[-1]) for r in plan)


async def run(url: str, fcm_url: str) -> list[tuple[str, float, float]]:
    from app.core.db import close_database, init_database

    await asyncio.to_thread(migrations.upgrade, url)
    database = init_database(DatabaseSettings(url=url))
    gateway = FirebasePushGateway(
        credential=StaticTokenCredential(),
        project_id="bench-project",
        endpoint=fcm_url,
        timeout_seconds=10,
    )
    try:
        push_ours, push_bare = await bench_push(database, gateway)
        count_ours, count_bare, plan = await bench_unread(database)
    finally:
        await gateway.aclose()
        await close_database()
    print(f"  unread-count plan: {plan}")
    return [
        (f"push to {DEVICES} devices (ms)", push_ours * 1e3, push_bare * 1e3),
        (f"unread count at {NOTIFICATIONS:,} (ms)", count_ours * 1e3, count_bare * 1e3),
    ]


def table(backend: str, rows: list[tuple[str, float, float]]) -> bool:
    print(f"{backend:<34} {'ours':>9} {'bare':>9} {'ratio':>7}  target")
    ok = True
    for name, ours, bare in rows:
        ratio = ours / bare
        ok = ok and ratio <= TARGET
        verdict = "ok" if ratio <= TARGET else "MISSED"
        print(f"  {name:<32} {ours:>9.3f} {bare:>9.3f} {ratio:>6.2f}x  <= {TARGET}x {verdict}")
    return ok


async def pg_database() -> str | None:
    """Create a throw-away PostgreSQL database; None when no server answers."""
    try:
        conn = await asyncpg.connect(PG_SERVER, timeout=3)
    except (OSError, asyncpg.PostgresError):
        return None
    name = f"bench_notifications_{uuid.uuid4().hex[:8]}"
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base = make_url(PG_SERVER).set(drivername="postgresql+asyncpg", database=name)
    return base.render_as_string(hide_password=False)


async def drop_pg(url: str) -> None:
    name = make_url(url).database
    conn = await asyncpg.connect(PG_SERVER)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def main() -> int:
    # firebase-admin 7.5+ prefers installation ids; devices register with tokens.
    warnings.filterwarnings("ignore", category=DeprecationWarning, module="firebase_admin")
    warnings.filterwarnings("ignore", message=".*tokens is deprecated")
    server = SandboxServer()
    fcm_url = f"{server.start()}/fcm"
    ok = True
    try:
        with tempfile.TemporaryDirectory() as tmp:
            sqlite = f"sqlite+aiosqlite:///{tmp}/bench.db"
            ok = table("SQLite", await run(sqlite, fcm_url)) and ok
        pg = await pg_database()
        if pg is None:
            print("PostgreSQL: no server answers at BENCH_PG_URL; skipped")
        else:
            try:
                ok = table("PostgreSQL", await run(pg, fcm_url)) and ok
            finally:
                await drop_pg(pg)
    finally:
        server.stop()
    print(f"pushes the fake FCM accepted: {len(server.state.fcm.sent)}")
    print("every target met" if ok else "a target was MISSED")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

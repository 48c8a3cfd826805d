"""Inbox benchmark: one user's sync against its latency bound, and the local list against SQL.

Run with ``make bench`` or ``.venv/bin/python benchmarks/inbox.py``. It builds a throw-away
database from the migrations: a SQLite file, or with ``BENCH_INBOX_DATABASE=postgres`` a
database of its own on the PostgreSQL server of ``BENCH_PG_URL`` (default
``postgresql://postgres@127.0.0.1:5432/postgres``), dropped at the end
(``BENCH_DATABASE_URL`` names an existing one instead, used as it is). It runs the sandbox in
its own process (``python -m app sandbox`` on ``BENCH_SANDBOX_PORT``, 8104) with
``BENCH_LATENCY_MS`` (50) of latency on every answer, reached over real HTTP.

- Sync: the three inboxes of the demo employee sync concurrently, as their three durable
  listeners do at the relays (``procurement``, ``hr`` over the BPM worklist as the user, JWT;
  ``leasing`` over Yardi), each with its reads, source calls and one write transaction. The
  bound is the slowest source's pages, measured in the same run: the very requests the first
  sync sent (captured on the integrations' HTTP clients), sent again by a bare httpx client,
  each inbox's pages one after the other and the three inboxes at once, the answers read and
  nothing else done. It is at least the pages times the latency (printed for reference):
  the sandbox's own work and the HTTP exchange are the source's time, not the inbox's. Steady
  state (nothing new) and a first sync (every task new, published) are timed apart. Target:
  the steady sync <= 1.2x the bound.
- List: ``GET /procurement/tasks`` for a user with ``BENCH_TASKS`` (500) pending tasks, first
  page of 50, through the inbox service (one query: page, total and the inbox's ``synced_at``,
  then the response models), against a bare SQL query of the same page. Target: <= 1.5x. The
  whole HTTP request (token check included) is shown for reference.
"""

from __future__ import annotations

import asyncio
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# The project first, and not this folder, which a script run puts first: its http.py would
# hide the standard library's http from httpx and the app.
sys.path[:] = [str(ROOT), *(p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks")]

import httpx  # noqa: E402
from pydantic import SecretStr  # noqa: E402
from sqlalchemy import Uuid, bindparam, insert, text, update  # noqa: E402

LATENCY_MS = float(os.environ.get("BENCH_LATENCY_MS", "50"))
TASKS = int(os.environ.get("BENCH_TASKS", "500"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "15"))
LIST_CALLS = int(os.environ.get("BENCH_LIST_CALLS", "200"))
PAGE = 50
EMMA = "EMMA.EMPLOYEE"
SANDBOX_PORT = int(os.environ.get("BENCH_SANDBOX_PORT", "8104"))


DATABASE = os.environ.get("BENCH_INBOX_DATABASE", "sqlite")
PG_SERVER = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _environment(tmp: Path, url: str | None) -> str:
    url = url or os.environ.get("BENCH_DATABASE_URL") or f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
    os.environ.update(
        DATABASE_URL=url,
        APP_ENV="test",
        APP_LOG_LEVEL="ERROR",
        EVENTS_RELAY_ENABLED="false",
        SANDBOX_JWT_KEY_FILE=str(tmp / "sandbox_jwt.pem"),
    )
    return url


@contextmanager
def _sandbox(port: int) -> Iterator[str]:
    """Run ``python -m app sandbox`` in its own process (its work never competes with ours)."""
    env = {**os.environ, "SANDBOX_LATENCY_MS": str(LATENCY_MS), "SANDBOX_USERS": "50"}
    env["SANDBOX_NEW_TASK_INTERVAL_SECONDS"] = "0"
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "sandbox", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/sandbox/", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the sandbox did not start")
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(10)


async def _median(fn: Callable[[], Awaitable[Any]], rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        await fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> None:
    from app.core import migrations
    from app.core.settings import get_settings
    from app.sandbox.keys import demo_private_key_pem

    if DATABASE not in ("sqlite", "postgres", "postgresql"):
        raise SystemExit("BENCH_INBOX_DATABASE is sqlite or postgres")
    own = DATABASE != "sqlite" and not os.environ.get("BENCH_DATABASE_URL")
    with tempfile.TemporaryDirectory() as tmp:
        url = _environment(Path(tmp), asyncio.run(_create_pg()) if own else None)
        try:
            migrations.upgrade(url)
            demo_private_key_pem(get_settings().sandbox.jwt_key_file)  # before the sandbox
            with _sandbox(SANDBOX_PORT) as base:
                asyncio.run(_run(url, base))
        finally:
            if own:
                asyncio.run(_drop_pg(url))


async def _create_pg() -> str:
    """A database of this run's own on ``BENCH_PG_URL``'s server."""
    import asyncpg
    from sqlalchemy.engine import make_url

    name = f"wfh_bench_inbox_{os.getpid()}"
    conn = await asyncpg.connect(PG_SERVER)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = make_url(PG_SERVER).set(drivername="postgresql+asyncpg", database=name)
    return url.render_as_string(hide_password=False)


async def _drop_pg(url: str) -> None:
    import asyncpg
    from sqlalchemy.engine import make_url

    conn = await asyncpg.connect(PG_SERVER)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')
    finally:
        await conn.close()


async def _run(url: str, base: str) -> None:
    from app.core.db import read_session, session_scope, utcnow
    from app.core.inbox.source import InboxUser
    from app.core.security import Principal
    from app.core.settings import get_settings
    from app.integrations.connections.schemas import (
        IntegrationKind,
        OracleFusionChanges,
        YardiChanges,
    )
    from app.integrations.connections.service import set_connection
    from app.integrations.runtime import get_integrations
    from app.main import create_app
    from app.modules.hr.service import inbox as hr
    from app.modules.leasing.service import inbox as leasing
    from app.modules.procurement.models import ProcurementInbox, ProcurementTask
    from app.modules.procurement.service import inbox as procurement
    from app.sandbox.keys import demo_private_key_pem

    settings = get_settings()
    pem = demo_private_key_pem(settings.sandbox.jwt_key_file)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        from app.core.tenancy import Organization

        async with session_scope() as session:
            org = Organization(name="Bench")
            session.add(org)
            await session.flush()
            organization_id = org.id
            await set_connection(
                session,
                organization_id=organization_id,
                kind=IntegrationKind.ORACLE_FUSION,
                changes=OracleFusionChanges(
                    base_url=f"{base}/sandbox/oracle",
                    auth_mode="jwt",
                    username="integration",
                    password=SecretStr("sandbox-password"),
                    jwt_private_key=SecretStr(pem),
                    jwt_issuer="bench",
                ),
            )
            await set_connection(
                session,
                organization_id=organization_id,
                kind=IntegrationKind.YARDI,
                changes=YardiChanges(
                    base_url=f"{base}/sandbox/yardi",
                    username="integration",
                    password=SecretStr("sandbox-password"),
                    server_name="sandbox",
                    database="bench",
                    interface_entity="Workflow Hub",
                    interface_license=SecretStr("BENCH"),
                ),
            )
        user = InboxUser(
            organization_id=organization_id,
            user_id=uuid.uuid4(),
            email="employee@example.com",
            oracle_username=EMMA,
            person_number="100002",
            user_type="EMPLOYEE",
        )
        inboxes = (procurement, hr, leasing)
        integrations = get_integrations()
        sent: dict[str, list[httpx.Request]] = {}

        async def capture(request: httpx.Request) -> None:
            inbox = request.url.params.get("applicationContext") or request.url.host
            sent.setdefault(f"{request.url.path} {inbox}", []).append(request)

        http_clients = (integrations.oracle_http, integrations.yardi_http)
        for client in http_clients:
            client.event_hooks["request"].append(capture)

        async def sync_all() -> None:
            await asyncio.gather(*(i.sync(user, sync_id=uuid.uuid4(), join=False) for i in inboxes))

        async def one(inbox: Any) -> int:
            """The calls one inbox's listing takes (BPM pages; one Yardi call)."""
            listed = await inbox.source.pending(user)
            if inbox.source.name == "yardi":
                return 1
            return max(1, math.ceil(len(listed) / settings.oracle_fusion.page_size))

        started = time.perf_counter()
        await sync_all()
        first = time.perf_counter() - started
        for client in http_clients:
            client.event_hooks["request"].remove(capture)
        pages = [await one(i) for i in inboxes]
        latency_bound = max(pages) * LATENCY_MS / 1000
        async with httpx.AsyncClient(timeout=30) as bare_http:

            async def pages_of(requests: list[httpx.Request]) -> None:
                for request in requests:
                    answer = await bare_http.request(
                        request.method,
                        request.url,
                        headers=request.headers,
                        content=request.content,
                    )
                    assert answer.status_code == 200, answer.text
                    answer.read()

            async def bare_sources() -> None:
                await asyncio.gather(*(pages_of(requests) for requests in sent.values()))

            assert len(sent) == 3, sorted(sent)  # fscm, hcm and Yardi
            await bare_sources()  # warm-up: the bare client's connections
            # Interleaved, as the list's are: a drift in the machine's load hits both alike.
            timed: dict[str, list[float]] = {"bare": [], "sync": []}
            for _ in range(ROUNDS):
                for name, fn in (("bare", bare_sources), ("sync", sync_all)):
                    started = time.perf_counter()
                    await fn()
                    timed[name].append(time.perf_counter() - started)
            bound = statistics.median(timed["bare"])
            steady = statistics.median(timed["sync"])

        # -- the list --------------------------------------------------------------------
        owner = uuid.uuid4()
        now = utcnow()
        rows = [
            {
                "id": uuid.uuid4(),
                "organization_id": organization_id,
                "user_id": owner,
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
        async with session_scope() as session:
            await session.execute(insert(ProcurementTask), rows)
            session.add(
                ProcurementInbox(
                    user_id=owner,
                    organization_id=organization_id,
                    user_type="EMPLOYEE",
                    synced_at=now,
                )
            )
        principal = Principal(
            user_id=owner,
            organization_id=organization_id,
            role="employee",
            user_type="EMPLOYEE",
            session_id=uuid.uuid4(),
        )
        engine = app.state.database.engine
        bare = text(
            "SELECT * FROM procurement_tasks WHERE organization_id = :org AND user_id = :user"
            " AND status = 'pending' ORDER BY sort_at DESC, id DESC LIMIT :limit OFFSET 0"
        ).bindparams(bindparam("org", type_=Uuid()), bindparam("user", type_=Uuid()))
        params = {"org": organization_id, "user": owner, "limit": PAGE}

        async def bare_page() -> None:
            async with engine.connect() as conn:
                found = (await conn.execute(bare, params)).all()
            assert len(found) == PAGE

        async def service_page() -> None:
            async with read_session() as session:  # as the route's ReadSession
                page = await procurement.list_tasks(
                    principal, session=session, pending_only=True, limit=PAGE, offset=0
                )
            assert len(page.items) == PAGE
            assert page.total == TASKS

        listing: dict[str, list[float]] = {"bare": [], "service": []}
        for _ in range(3):  # warm-up
            await bare_page()
            await service_page()
        for _ in range(LIST_CALLS):
            for name, fn in (("bare", bare_page), ("service", service_page)):
                started = time.perf_counter()
                await fn()
                listing[name].append(time.perf_counter() - started)
        bare_s = statistics.median(listing["bare"])
        service_s = statistics.median(listing["service"])
        http_s = await _http_list(app, organization_id, owner)

    backend = url.split(":", 1)[0]
    print(f"inbox benchmark ({backend}; sandbox latency {LATENCY_MS:.0f} ms; pages {pages})")
    print(f"{'case':<44} {'time':>10}  {'ratio':<16} target")
    print("-" * 84)
    print(
        f"{'sync bound: pages x latency':<44} {latency_bound * 1e3:>8.1f}ms  "
        f"{'':16} (reference: at least this)"
    )
    print(f"{'sync bound: the same requests, bare HTTP':<44} {bound * 1e3:>8.1f}ms")
    print(
        f"{'sync of three inboxes, steady':<44} {steady * 1e3:>8.1f}ms  "
        f"{steady / bound:>5.2f}x bound      <= 1.2x"
    )
    print(
        f"{'sync of three inboxes, first (all new)':<44} {first * 1e3:>8.1f}ms  "
        f"{first / bound:>5.2f}x bound"
    )
    print(
        f"{'sync of three inboxes, steady':<44} {steady * 1e3:>8.1f}ms  "
        f"{steady / latency_bound:>5.2f}x latency    (reference)"
    )
    print(f"{f'bare SQL page ({PAGE} of {TASKS})':<44} {bare_s * 1e3:>8.2f}ms")
    print(
        f"{'GET /procurement/tasks, service':<44} {service_s * 1e3:>8.2f}ms  "
        f"{service_s / bare_s:>5.2f}x bare SQL   <= 1.5x"
    )
    print(
        f"{'GET /procurement/tasks, whole HTTP request':<44} {http_s * 1e3:>8.2f}ms  "
        f"{http_s / bare_s:>5.2f}x bare SQL   (reference)"
    )


async def _http_list(app: Any, organization_id: uuid.UUID, owner: uuid.UUID) -> float:
    """The whole request through the ASGI app, as a logged-in user with 500 tasks would see."""
    from app.core.db import session_scope
    from app.core.settings import get_settings
    from app.modules.procurement.models import ProcurementTask
    from app.modules.user import service

    async with session_scope() as session:
        user = await service.create_user(
            session,
            settings=get_settings(),
            organization_id=organization_id,
            email="bench-list@example.com",
            password="bench-password",
        )
        user_id = user.id
    async with session_scope() as session:
        await session.execute(
            update(ProcurementTask).where(ProcurementTask.user_id == owner).values(user_id=user_id)
        )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        login = await client.post(
            "/api/v1/auth/login",
            json={"email": "bench-list@example.com", "password": "bench-password"},
        )
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}

        async def get() -> None:
            response = await client.get("/api/v1/procurement/tasks", headers=headers)
            assert response.status_code == 200
            assert response.json()["total"] == TASKS

        for _ in range(3):
            await get()
        return await _median(get, LIST_CALLS // 2)


if __name__ == "__main__":
    main()

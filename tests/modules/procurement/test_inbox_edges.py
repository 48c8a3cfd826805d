"""The procurement inbox at its edges: paging, basic-auth connections, the breaker in bulk,
refresh timeouts, idempotency in flight and a user's identity from their events."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import insert, select

from app.core.db import session_scope, utcnow
from app.core.inbox.settings import get_inbox_settings
from app.modules.procurement.models import (
    ProcurementIdempotencyKey,
    ProcurementInbox,
    ProcurementTask,
)
from app.sandbox.state import Fault
from tests.dbutil import watch_database
from tests.factories import Account, logged_in_user, problem_code
from tests.inbox_support import (
    RunningSandbox,
    connect,
    decide_elsewhere,
    received_actions,
    request_sync,
    tasks,
)

TASKS = "/api/v1/procurement/tasks"


async def test_the_list_is_newest_first_and_paged(
    app: FastAPI, client: httpx.AsyncClient, employee: Account, connected: RunningSandbox
) -> None:
    now = utcnow()
    async with session_scope() as session:
        await session.execute(
            insert(ProcurementTask),
            [
                {
                    "id": uuid.uuid4(),
                    "organization_id": employee.organization_id,
                    "user_id": employee.user_id,
                    "task_id": str(n),
                    "title": f"Task {n}",
                    "status": "pending" if n % 2 else "closed",
                    "assigned_at": now - timedelta(minutes=n),
                    "sort_at": now - timedelta(minutes=n),
                    "synced_at": now,
                    "created_at": now,
                    "updated_at": now,
                }
                for n in range(7)
            ],
        )
    first = await tasks(client, "procurement", employee, limit="2")
    assert [t["task_id"] for t in first["items"]] == ["1", "3"]
    assert (first["total"], first["limit"], first["offset"]) == (3, 2, 0)
    assert first["synced_at"] is None  # never synced: the rows came from elsewhere
    second = await tasks(client, "procurement", employee, limit="2", offset="2")
    assert [t["task_id"] for t in second["items"]] == ["5"]
    everything = await tasks(client, "procurement", employee, status="all", limit="200")
    assert [t["task_id"] for t in everything["items"]] == [str(n) for n in range(7)]
    beyond = await tasks(client, "procurement", employee, offset="50")
    assert (beyond["items"], beyond["total"]) == ([], 3)
    for params in ({"limit": "0"}, {"limit": "201"}, {"offset": "-1"}, {"status": "done"}):
        response = await client.get(TASKS, headers=employee.headers, params=params)
        assert response.status_code == 422, params
        assert problem_code(response) == "validation_error"


async def test_a_basic_auth_connection_lists_the_users_tasks_as_the_integration_account(
    app: FastAPI,
    client: httpx.AsyncClient,
    employee: Account,
    sandbox: RunningSandbox,
    demo_key: tuple[Path, str],
) -> None:
    await connect(employee.organization_id, sandbox, demo_key[1], auth_mode="basic")
    await request_sync(app, employee)
    listed = (await tasks(client, "procurement", employee))["items"]
    expected = [t for t in sandbox.state.data.tasks_of(1, [0]) if t.is_purchasing]
    assert sorted(t["task_id"] for t in listed) == sorted(str(t.number) for t in expected)
    response = await client.post(
        f"{TASKS}/{listed[0]['id']}/actions", json={"action": "APPROVE"}, headers=employee.headers
    )
    assert response.status_code == 200, response.text
    decision = sandbox.state.task_decisions[int(listed[0]["task_id"])]
    assert decision.actor == "integration"  # basic auth acts as the integration account


async def test_bulk_stops_calling_once_the_breaker_opens(
    app: FastAPI,
    client: httpx.AsyncClient,
    employee: Account,
    connected: RunningSandbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await request_sync(app, employee)
    listed = (await tasks(client, "procurement", employee))["items"]
    monkeypatch.setenv("INBOX_BULK_CONCURRENCY", "1")
    get_inbox_settings.cache_clear()
    before = connected.state.traffic["oracle"].requests
    connected.state.inject("oracle", Fault(503, times=10_000))
    items = [{"id": listed[i % len(listed)]["id"], "action": "APPROVE"} for i in range(12)]
    response = await client.post(
        f"{TASKS}/actions", json={"items": items}, headers=employee.headers
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert len(results) == 12
    assert all(r["outcome"] == "failed" for r in results)
    assert {r["code"] for r in results} <= {"upstream_unavailable", "task_action_in_progress"}
    assert results[-1]["code"] == "upstream_unavailable"
    assert results[-1]["retry_after"] >= 1
    calls = connected.state.traffic["oracle"].requests - before
    # Five failures open the breaker (HTTP_BREAKER_FAILURE_THRESHOLD); the rest never call.
    assert calls <= 5 * 3, calls
    assert connected.state.task_decisions == {}


async def test_refresh_falls_back_to_the_local_copy_when_the_source_is_slow(
    app: FastAPI,
    client: httpx.AsyncClient,
    employee: Account,
    connected: RunningSandbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await request_sync(app, employee)
    before = await tasks(client, "procurement", employee)
    monkeypatch.setenv("INBOX_REFRESH_TIMEOUT_SECONDS", "0.2")
    get_inbox_settings.cache_clear()
    connected.state.inject("oracle", Fault(200, delay_seconds=2, times=1))
    started = asyncio.get_running_loop().time()
    page = await tasks(client, "procurement", employee, refresh="true")
    assert asyncio.get_running_loop().time() - started < 1.5
    assert page["refresh"] == "timed_out"
    assert (page["synced_at"], page["items"]) == (before["synced_at"], before["items"])


async def test_the_list_checks_the_caller_and_reads_on_one_connection(
    app: FastAPI,
    client: httpx.AsyncClient,
    employee: Account,
    connected: RunningSandbox,
    is_postgres: bool,
) -> None:
    await request_sync(app, employee)
    with watch_database() as watched:
        page = await tasks(client, "procurement", employee)
    assert page["total"] >= 1
    assert watched.checkouts == 1
    assert len(watched.statements) == 2, watched.statements  # the session, the page
    if is_postgres:
        assert watched.isolation_levels == {"AUTOCOMMIT"}


async def test_a_refresh_holds_no_pooled_connection_while_the_source_answers(
    app: FastAPI, client: httpx.AsyncClient, employee: Account, connected: RunningSandbox
) -> None:
    from app.core.db import get_database

    await request_sync(app, employee)
    pool = get_database().engine.sync_engine.pool
    settings = connected.state.settings
    connected.state.settings = settings.model_copy(update={"latency_ms": 400})  # each call
    listing = asyncio.create_task(tasks(client, "procurement", employee, refresh="true"))
    held: list[int] = []
    while not listing.done():
        held.append(pool.checkedout())  # type: ignore[attr-defined]
        await asyncio.sleep(0.02)
    connected.state.settings = settings
    page = await listing
    assert page["refresh"] == "synced"
    assert len(held) > 10
    # The caller was checked and the page read on the route's connection; while the source
    # took its time, none was out.
    assert held.count(0) >= len(held) * 0.6, held


async def test_a_key_in_flight_answers_409_and_the_key_is_per_user(
    app: FastAPI, client: httpx.AsyncClient, employee: Account, connected: RunningSandbox
) -> None:
    await request_sync(app, employee)
    task = (await tasks(client, "procurement", employee))["items"][0]
    url = f"{TASKS}/{task['id']}/actions"
    async with session_scope() as session:  # a first request with this key is under way
        session.add(
            ProcurementIdempotencyKey(
                organization_id=employee.organization_id,
                user_id=employee.user_id,
                key="busy",
                request_hash=_hash(task["id"], "APPROVE", None),
                created_at=utcnow(),
            )
        )
    busy = await client.post(
        url, json={"action": "APPROVE"}, headers={**employee.headers, "Idempotency-Key": "busy"}
    )
    assert busy.status_code == 409
    assert problem_code(busy) == "idempotency_key_in_progress"
    assert connected.state.task_decisions == {}


def _hash(row_id: str, action: str, comment: str | None) -> str:
    from app.core.inbox.engine import _hash as request_hash

    return request_hash(uuid.UUID(row_id), action, comment)


async def test_the_users_identity_follows_their_events(
    app: FastAPI, client: httpx.AsyncClient, org: uuid.UUID, admin: Account
) -> None:
    someone = await logged_in_user(client, org, oracle_username="SOMEONE", person_number="1")
    response = await client.patch(
        f"/api/v1/users/{someone.user_id}",
        json={"oracle_username": "SOMEONE.ELSE", "is_active": False},
        headers=admin.headers,
    )
    assert response.status_code == 200, response.text
    async with session_scope() as session:
        row: Any = await session.scalar(
            select(ProcurementInbox).where(ProcurementInbox.user_id == someone.user_id)
        )
    assert (row.oracle_username, row.user_type, row.is_active) == (
        "SOMEONE.ELSE",
        "EMPLOYEE",
        False,
    )
    assert row.synced_at is None


async def test_the_decided_task_reads_closed_without_calling_the_source(
    app: FastAPI, client: httpx.AsyncClient, employee: Account, connected: RunningSandbox
) -> None:
    await request_sync(app, employee)
    task = (await tasks(client, "procurement", employee))["items"][0]
    await decide_elsewhere(connected, "oracle", task=int(task["task_id"]), action="APPROVE")
    detail = (await client.get(f"{TASKS}/{task['id']}", headers=employee.headers)).json()
    assert (detail["status"], detail["actions"], detail["details"]) == ("closed", [], {})
    before = connected.state.traffic["oracle"].requests
    again = (await client.get(f"{TASKS}/{task['id']}", headers=employee.headers)).json()
    assert again["status"] == "closed"
    assert connected.state.traffic["oracle"].requests == before


async def test_a_bulk_idempotency_key_replays_final_answers_and_retries_5xx_items(
    app: FastAPI,
    client: httpx.AsyncClient,
    employee: Account,
    connected: RunningSandbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("INBOX_BULK_CONCURRENCY", "1")
    get_inbox_settings.cache_clear()
    await request_sync(app, employee)
    a, c = (await tasks(client, "procurement", employee))["items"][:2]
    url = f"{TASKS}/actions"

    async def bulk(key: str, *items: dict[str, Any]) -> httpx.Response:
        headers = {**employee.headers, "Idempotency-Key": key}
        return await client.post(url, json={"items": list(items)}, headers=headers)

    body = ({"id": a["id"], "action": "APPROVE"}, {"id": a["id"], "action": "APPROVE"})
    first = await bulk("both", *body)
    assert first.status_code == 200, first.text
    assert [(r["outcome"], r["code"]) for r in first.json()["results"]] == [
        ("succeeded", None),
        ("failed", "task_already_decided"),
    ]
    again = await bulk("both", *body)
    assert (again.status_code, again.json()) == (200, first.json())
    assert len(await received_actions(connected, "oracle", task=a["task_id"])) == 1
    other = await bulk("both", body[0])
    assert other.status_code == 422
    assert problem_code(other) == "idempotency_key_reused"
    single = await client.post(
        f"{TASKS}/{a['id']}/actions",
        json={"action": "APPROVE"},
        headers={**employee.headers, "Idempotency-Key": "both"},
    )
    assert problem_code(single) == "idempotency_key_reused"

    # A 5xx item is tried again by the repeat; a final failure is replayed as it was.
    unknown = {"id": str(uuid.uuid4()), "action": "APPROVE"}
    connected.state.inject("oracle", Fault(503, retry_after=3, times=1000))
    failed = await bulk("mixed", {"id": c["id"], "action": "APPROVE"}, unknown)
    assert [(r["outcome"], r["code"]) for r in failed.json()["results"]] == [
        ("failed", "upstream_unavailable"),
        ("failed", "task_not_found"),
    ]
    connected.state.faults["oracle"].clear()
    retried = await bulk("mixed", {"id": c["id"], "action": "APPROVE"}, unknown)
    results = retried.json()["results"]
    assert [(r["outcome"], r["code"]) for r in results] == [
        ("succeeded", None),
        ("failed", "task_not_found"),
    ]
    replayed = await bulk("mixed", {"id": c["id"], "action": "APPROVE"}, unknown)
    assert replayed.json()["results"] == results
    assert len(await received_actions(connected, "oracle", task=c["task_id"])) == 1

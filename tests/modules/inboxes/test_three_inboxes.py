"""The three inboxes side by side: one sync request fills them all, and each source fails alone."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, time, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from app.contracts.common import PendingTaskReceived
from app.contracts.user import UserTaskSyncRequested
from app.core.db import session_scope
from app.events.outbox.models import OutboxDelivery
from app.events.testing import capture_events, run_pending
from app.modules.leasing.models import LeasingTask
from app.modules.procurement.models import ProcurementTask
from app.sandbox.state import Fault
from tests.factories import Account, problem_code, settle
from tests.inbox_support import (
    EMMA,
    RunningSandbox,
    publish_sync,
    received_actions,
    request_sync,
    tasks,
)

MODULES = ("procurement", "hr", "leasing")


async def test_one_sync_fills_all_three_inboxes_under_one_sync_id(
    app: FastAPI, client: httpx.AsyncClient, employee: Account, connected: RunningSandbox
) -> None:
    with capture_events(app.state.emitter) as captured:
        await request_sync(app, employee)
    pages = {m: await tasks(client, m, employee) for m in MODULES}
    data = connected.state.data
    assert {t["task_id"] for t in pages["procurement"]["items"]} == {
        str(t.number) for t in data.tasks_of(1, [0]) if t.is_purchasing
    }
    assert {t["task_id"] for t in pages["hr"]["items"]} == {
        str(t.number) for t in data.tasks_of(1, [0]) if not t.is_purchasing
    }
    assert {t["task_id"] for t in pages["leasing"]["items"]} == {
        str(lease.record_id) for lease in data.leases_of(1, [0])
    }
    assert all(page["synced_at"] is not None for page in pages.values())
    received = [p.event for p in captured.published if isinstance(p.event, PendingTaskReceived)]
    assert len(received) == sum(len(page["items"]) for page in pages.values())
    (sync,) = captured.of(UserTaskSyncRequested)
    assert {e.sync_id for e in received} == {captured.envelope_of(sync).id}  # type: ignore[union-attr]


def _due(found: dict[str, Any]) -> dict[str, datetime | None]:
    return {
        t["task_id"]: datetime.fromisoformat(t["due_at"]) if t["due_at"] else None
        for t in found["items"]
    }


async def test_due_dates_come_from_each_source_on_insert_and_on_update(
    app: FastAPI, client: httpx.AsyncClient, employee: Account, connected: RunningSandbox
) -> None:
    data = connected.state.data
    bpm = data.tasks_of(1, [0])
    expected: dict[str, dict[str, datetime | None]] = {
        "procurement": {str(t.number): t.due for t in bpm if t.is_purchasing},
        "hr": {str(t.number): t.due for t in bpm if not t.is_purchasing},
        "leasing": {  # Yardi's DueDate is a day: its start, UTC
            str(lease.record_id): datetime.combine(lease.due_on, time(), UTC)
            if lease.due_on
            else None
            for lease in data.leases_of(1, [0])
        },
    }
    dues = [due for found in expected.values() for due in found.values()]
    assert any(due is None for due in dues)
    assert any(due is not None for due in dues)

    await request_sync(app, employee)
    for m in MODULES:
        assert _due(await tasks(client, m, employee, limit="200")) == expected[m], m
    first = (await tasks(client, "leasing", employee))["items"][0]
    detail = await client.get(f"/api/v1/leasing/tasks/{first['id']}", headers=employee.headers)
    assert detail.json()["due_at"] == first["due_at"]

    # A due date that moved at the source is taken by the next sync (the stored copy is stale).
    async with session_scope() as session:
        for table in (ProcurementTask, LeasingTask):
            await session.execute(
                update(table)
                .where(table.user_id == employee.user_id)
                .values(due_at=datetime(2030, 1, 1, tzinfo=UTC))
            )
    await request_sync(app, employee)
    for m in ("procurement", "leasing"):
        assert _due(await tasks(client, m, employee, limit="200")) == expected[m], m


async def test_each_module_shows_its_own_details(
    app: FastAPI, client: httpx.AsyncClient, employee: Account, connected: RunningSandbox
) -> None:
    await request_sync(app, employee)
    details: dict[str, dict[str, Any]] = {}
    for m in MODULES:
        first = (await tasks(client, m, employee))["items"][0]
        response = await client.get(f"/api/v1/{m}/tasks/{first['id']}", headers=employee.headers)
        assert response.status_code == 200, response.text
        assert response.json()["actions"] == ["APPROVE", "REJECT"]
        details[m] = response.json()["details"]
    assert {"requisition_number", "description", "preparer", "amount", "currency"} <= set(
        details["procurement"]
    )
    assert details["hr"]["subject"]
    assert details["hr"]["requester"]
    assert details["hr"]["transaction_type"]
    leasing = details["leasing"]
    assert leasing["property"]
    assert leasing["unit"]
    assert leasing["applicant"]
    assert leasing["rent"]
    assert leasing["property_name"]
    assert leasing["lease_start"] < leasing["lease_end"]


async def test_a_leasing_approval_reaches_yardi_once(
    app: FastAPI, client: httpx.AsyncClient, employee: Account, connected: RunningSandbox
) -> None:
    await request_sync(app, employee)
    first = (await tasks(client, "leasing", employee))["items"][0]
    url = f"/api/v1/leasing/tasks/{first['id']}/actions"
    headers = {**employee.headers, "Idempotency-Key": "lease-1"}
    answers = [
        await client.post(url, json={"action": "REJECT", "comment": "no"}, headers=headers)
        for _ in range(2)
    ]
    assert [a.status_code for a in answers] == [200, 200]
    assert answers[0].json() == answers[1].json()
    (received,) = await received_actions(connected, "yardi")
    assert (received["task"], received["user"], received["action"]) == (
        first["task_id"],
        EMMA,
        "Reject",
    )
    again = await client.post(url, json={"action": "APPROVE"}, headers=employee.headers)
    assert again.status_code == 409
    assert problem_code(again) == "task_already_decided"
    await settle(app)
    trail = (await client.get("/api/v1/leasing/approvals", headers=employee.headers)).json()
    assert [(r["action"], r["outcome"], r["source"]) for r in trail["items"]] == [
        ("REJECT", "succeeded", "yardi")
    ]


async def test_oracle_failing_leaves_yardi_syncing(
    app: FastAPI, client: httpx.AsyncClient, employee: Account, connected: RunningSandbox
) -> None:
    connected.state.inject("oracle", Fault(503, times=10_000))
    await publish_sync(employee)
    # The Oracle syncs fail and wait for their retry; the Yardi one is not held up by them.
    await run_pending(app.state.emitter)
    for _ in range(200):
        leasing = await tasks(client, "leasing", employee)
        if leasing["total"]:
            break
        await asyncio.sleep(0.02)
    assert leasing["total"] == 2
    assert leasing["synced_at"] is not None
    for m in ("procurement", "hr"):
        page = await tasks(client, m, employee)
        assert (page["total"], page["synced_at"]) == (0, None)


async def _sync_deliveries() -> dict[str, OutboxDelivery]:
    async with session_scope(join=False) as session:
        rows = await session.scalars(
            select(OutboxDelivery).where(OutboxDelivery.listener_id.like("%.tasks.sync"))
        )
        return {row.listener_id.split(".")[0]: row for row in rows}


def _statuses(deliveries: dict[str, OutboxDelivery]) -> dict[str, str]:
    return {m: d.status for m, d in deliveries.items()}


async def test_oracle_asking_to_come_back_later_retries_the_oracle_syncs_then(
    app: FastAPI,
    client: httpx.AsyncClient,
    employee: Account,
    connected: RunningSandbox,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The source's SourceUnavailable is the core's TransientError: the relay retries it after
    # Oracle's Retry-After, and logs one line without a stack; the listener translates nothing.
    connected.state.inject("oracle", Fault(503, retry_after=120, times=10_000))
    caplog.set_level(logging.INFO, logger="app.events.outbox")
    await publish_sync(employee)
    await run_pending(app.state.emitter)  # or the app's own relay, whichever claims first
    deadline = datetime.now(UTC) + timedelta(seconds=10)
    settled = {"procurement": "pending", "hr": "pending", "leasing": "done"}
    while _statuses(deliveries := await _sync_deliveries()) != settled:
        assert datetime.now(UTC) < deadline, _statuses(deliveries)
        await asyncio.sleep(0.02)
    for m in ("procurement", "hr"):
        delivery = deliveries[m]
        assert (delivery.status, delivery.attempts) == ("pending", 1), m
        wait = delivery.available_at.replace(tzinfo=UTC) - datetime.now(UTC)
        assert timedelta(seconds=100) < wait <= timedelta(seconds=120), m  # Oracle's Retry-After
        assert "SourceUnavailable" in (delivery.last_error or ""), m
    failed = [r for r in caplog.records if "tasks.sync failed (attempt" in r.getMessage()]
    assert len(failed) == 2
    assert {(r.levelno, r.exc_info) for r in failed} == {(logging.INFO, None)}

    connected.state.faults["oracle"].clear()
    later = datetime.now(UTC) + timedelta(seconds=121)
    await run_pending(app.state.emitter, clock=lambda: later)
    assert _statuses(await _sync_deliveries()) == dict.fromkeys(MODULES, "done")
    assert (await tasks(client, "procurement", employee))["total"] > 0


async def test_an_organisation_without_connections_skips_its_syncs_without_retrying(
    app: FastAPI,
    client: httpx.AsyncClient,
    employee: Account,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="app.core.inbox")
    await request_sync(app, employee)
    deliveries = await _sync_deliveries()
    assert {m: (d.status, d.attempts) for m, d in deliveries.items()} == dict.fromkeys(
        MODULES, ("done", 1)
    )
    skipped = sorted(r.getMessage() for r in caplog.records if "skipped" in r.getMessage())
    assert skipped == [
        f"{m} sync of {employee.user_id} skipped: no {source} connection"
        for m, source in (
            ("hr", "oracle_fusion"),
            ("leasing", "yardi"),
            ("procurement", "oracle_fusion"),
        )
    ]
    for m in MODULES:
        assert (await tasks(client, m, employee))["synced_at"] is None

"""The procurement inbox end to end: REST API, relays and the sandbox over real HTTP."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from app.contracts.procurement import (
    ProcurementApprovalAudited,
    ProcurementTaskClosed,
    ProcurementTaskReceived,
)
from app.contracts.user import UserTaskSyncRequested
from app.core.db import session_scope, utcnow
from app.core.errors import TransientError
from app.core.inbox import store
from app.core.inbox.source import InboxUser
from app.core.inbox.sync import SyncConflict
from app.events.testing import capture_events
from app.modules.procurement.models import ProcurementTask
from app.modules.procurement.service import inbox as procurement_inbox
from app.sandbox.state import Fault
from tests.factories import Account, create_org, logged_in_user, problem_code, settle
from tests.inbox_support import (
    EMMA,
    RunningSandbox,
    decide_elsewhere,
    received_actions,
    request_sync,
    tasks,
)

TASKS = "/api/v1/procurement/tasks"
APPROVALS = "/api/v1/procurement/approvals"


def items(page: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = page["items"]
    return found


async def synced(
    app: FastAPI, client: httpx.AsyncClient, employee: Account
) -> list[dict[str, Any]]:
    await request_sync(app, employee)
    return items(await tasks(client, "procurement", employee))


async def test_a_sync_fills_the_inbox_and_publishes_each_task_once(
    app: FastAPI, client: httpx.AsyncClient, employee: Account, connected: RunningSandbox
) -> None:
    with capture_events(app.state.emitter) as captured:
        await request_sync(app, employee)
    page = await tasks(client, "procurement", employee)
    listed = items(page)
    data = connected.state.data
    expected = [t for t in data.tasks_of(1, [0]) if t.is_purchasing]
    assert sorted(t["task_id"] for t in listed) == sorted(str(t.number) for t in expected)
    assert page["total"] == len(expected)
    assert page["synced_at"] is not None
    assert all(t["status"] == "pending" and t["source"] == "oracle_fusion" for t in listed)
    assert all(t["title"].startswith("Approval of Requisition") for t in listed)
    received = captured.of(ProcurementTaskReceived)
    (sync,) = captured.of(UserTaskSyncRequested)
    sync_id = captured.envelope_of(sync).id  # type: ignore[union-attr]
    assert sorted(e.task_id for e in received) == sorted(t["task_id"] for t in listed)
    assert {e.sync_id for e in received} == {sync_id}

    with capture_events(app.state.emitter) as again:
        await request_sync(app, employee)
    assert again.of(ProcurementTaskReceived) == []
    assert (
        items(await tasks(client, "procurement", employee))[0]["synced_at"] > listed[0]["synced_at"]
    )


async def test_the_detail_is_read_live_with_actions_and_the_requisition(
    app: FastAPI, client: httpx.AsyncClient, employee: Account, connected: RunningSandbox
) -> None:
    task = (await synced(app, client, employee))[0]
    response = await client.get(f"{TASKS}/{task['id']}", headers=employee.headers)
    assert response.status_code == 200, response.text
    detail = response.json()
    assert detail["actions"] == ["APPROVE", "REJECT"]
    number = int(task["task_id"])
    assert detail["details"]["requisition_number"] is not None
    assert detail["details"]["currency"] == "USD" or detail["details"]["currency"] is None
    assert detail["details"]["amount"] is not None
    assert detail["details"]["preparer"]
    assert number in {t.number for t in connected.state.data.tasks_of(1, [0])}


async def test_approve_once_with_a_key_replays_and_a_reject_after_answers_409(
    app: FastAPI, client: httpx.AsyncClient, employee: Account, connected: RunningSandbox
) -> None:
    task = (await synced(app, client, employee))[0]
    url = f"{TASKS}/{task['id']}/actions"
    body = {"action": "APPROVE", "comment": "Looks right"}
    headers = {**employee.headers, "Idempotency-Key": "tap-1"}
    with capture_events(app.state.emitter) as captured:
        first = await client.post(url, json=body, headers=headers)
        again = await client.post(url, json=body, headers=headers)
    assert first.status_code == 200, first.text
    assert again.status_code == 200
    assert again.json() == first.json()
    answer = first.json()
    assert answer["outcome"] == "succeeded"
    assert answer["task"]["status"] == "approved"
    (received,) = await received_actions(connected, "oracle")
    assert (received["task"], received["user"], received["action"]) == (
        task["task_id"],
        EMMA,
        "APPROVE",
    )
    assert (received["comment"], received["outcome"]) == ("Looks right", "succeeded")
    (audit,) = captured.of(ProcurementApprovalAudited)
    assert (audit.outcome, str(audit.approval_id)) == ("succeeded", answer["approval_id"])
    (closed,) = captured.of(ProcurementTaskClosed)
    assert closed.reason == "approved"

    reused = await client.post(url, json={"action": "REJECT"}, headers=headers)
    assert reused.status_code == 422
    assert problem_code(reused) == "idempotency_key_reused"
    reject = await client.post(url, json={"action": "REJECT"}, headers=employee.headers)
    assert reject.status_code == 409
    assert problem_code(reject) == "task_already_decided"
    assert len(await received_actions(connected, "oracle")) == 1

    await settle(app)
    trail = (await client.get(APPROVALS, headers=employee.headers)).json()
    assert trail["total"] == 1
    (record,) = trail["items"]
    assert (record["id"], record["action"], record["outcome"]) == (
        answer["approval_id"],
        "APPROVE",
        "succeeded",
    )
    assert record["comment"] == "Looks right"
    assert record["task_id"] == task["task_id"]


async def test_two_concurrent_actions_reach_the_source_once(
    app: FastAPI, client: httpx.AsyncClient, employee: Account, connected: RunningSandbox
) -> None:
    task = (await synced(app, client, employee))[0]
    url = f"{TASKS}/{task['id']}/actions"
    answers = await asyncio.gather(
        *(client.post(url, json={"action": "APPROVE"}, headers=employee.headers) for _ in range(4))
    )
    statuses = sorted(a.status_code for a in answers)
    assert statuses.count(200) == 1, [a.text for a in answers]
    assert all(
        problem_code(a) in {"task_action_in_progress", "task_already_decided"}
        for a in answers
        if a.status_code != 200
    )
    assert len(connected.state.task_decisions) == 1


async def test_a_task_decided_at_the_source_between_syncs_is_closed_and_published(
    app: FastAPI, client: httpx.AsyncClient, employee: Account, connected: RunningSandbox
) -> None:
    listed = await synced(app, client, employee)
    gone = listed[0]
    await decide_elsewhere(connected, "oracle", task=int(gone["task_id"]), action="APPROVE")
    with capture_events(app.state.emitter) as captured:
        await request_sync(app, employee)
    (closed,) = captured.of(ProcurementTaskClosed)
    assert (closed.task_id, closed.reason) == (gone["task_id"], "no_longer_pending")
    pending = items(await tasks(client, "procurement", employee))
    assert gone["id"] not in {t["id"] for t in pending}
    everything = items(await tasks(client, "procurement", employee, status="all"))
    row = next(t for t in everything if t["id"] == gone["id"])
    assert (row["status"], row["close_reason"]) == ("closed", "no_longer_pending")


@pytest.mark.parametrize("meanwhile", ["approved here", "claimed by an action"])
async def test_a_row_that_changed_after_the_sync_read_it_keeps_its_outcome(
    app: FastAPI,
    client: httpx.AsyncClient,
    employee: Account,
    connected: RunningSandbox,
    monkeypatch: pytest.MonkeyPatch,
    meanwhile: str,
) -> None:
    # A sync reads the inbox's pending rows while the source answers. An action that finishes
    # (or starts) on a row in between keeps its outcome: the row is closed only while it is
    # still pending and unclaimed, and no task.closed is published for it.
    listed = await synced(app, client, employee)
    gone = listed[0]
    await decide_elsewhere(connected, "oracle", task=int(gone["task_id"]), action="APPROVE")
    read = asyncio.Event()
    pending_tasks = store.pending_tasks
    source = procurement_inbox.source
    list_pending = source.pending

    async def read_then_signal(*args: Any) -> list[Any]:
        rows = await pending_tasks(*args)
        read.set()
        return rows

    async def listed_after_a_change(user: Any) -> Any:
        tasks_ = await list_pending(user)
        await read.wait()
        T = ProcurementTask
        values: dict[str, Any] = (
            {"status": "approved", "close_reason": "approved", "closed_at": utcnow()}
            if meanwhile == "approved here"
            else {"claimed_until": utcnow() + timedelta(minutes=2)}
        )
        async with session_scope(join=False) as session:
            await session.execute(update(T).where(T.id == uuid.UUID(gone["id"])).values(values))
        return tasks_

    monkeypatch.setattr(store, "pending_tasks", read_then_signal)
    monkeypatch.setattr(source, "pending", listed_after_a_change)
    with capture_events(app.state.emitter) as captured:
        await request_sync(app, employee)
    assert not captured.of(ProcurementTaskClosed)
    everything = items(await tasks(client, "procurement", employee, status="all"))
    row = next(t for t in everything if t["id"] == gone["id"])
    expected = ("approved", "approved") if meanwhile == "approved here" else ("pending", None)
    assert (row["status"], row["close_reason"]) == expected


async def test_a_sync_that_loses_the_race_to_store_a_new_task_is_a_transient_conflict(
    app: FastAPI,
    client: httpx.AsyncClient,
    employee: Account,
    connected: RunningSandbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A refresh beside the durable sync of a new inbox: both find the same new task, and the
    # second INSERT breaks the inbox's unique key. The loser is retried (a TransientError, one
    # log line at the relay), not a bug with a stack; a refresh answers from the local copy.
    apply_listing = store.apply_listing

    async def lost_the_race(*args: Any, **kwargs: Any) -> Any:
        raise IntegrityError("INSERT INTO procurement_tasks", {}, Exception("UNIQUE constraint"))

    monkeypatch.setattr(store, "apply_listing", lost_the_race)
    user = InboxUser(
        organization_id=employee.organization_id,
        user_id=employee.user_id,
        email=employee.email,
        oracle_username=EMMA,
    )
    with pytest.raises(SyncConflict) as raised:
        await procurement_inbox.sync(user, sync_id=uuid.uuid4(), join=False, merge_identity=True)
    assert isinstance(raised.value, TransientError)
    # The refresh that lost answers the local copy (still empty), not a 500.
    assert items(await tasks(client, "procurement", employee, refresh="true")) == []

    monkeypatch.setattr(store, "apply_listing", apply_listing)
    result = await procurement_inbox.sync(
        user, sync_id=uuid.uuid4(), join=False, merge_identity=True
    )
    assert result.received == 2


async def test_acting_on_a_task_decided_elsewhere_answers_409_and_audits_the_failure(
    app: FastAPI, client: httpx.AsyncClient, employee: Account, connected: RunningSandbox
) -> None:
    task = (await synced(app, client, employee))[0]
    await decide_elsewhere(
        connected, "oracle", task=int(task["task_id"]), action="REJECT", actor="ALEX.ADMIN"
    )
    response = await client.post(
        f"{TASKS}/{task['id']}/actions", json={"action": "APPROVE"}, headers=employee.headers
    )
    assert response.status_code == 409
    assert problem_code(response) == "task_already_decided"
    await settle(app)
    (record,) = (await client.get(APPROVALS, headers=employee.headers)).json()["items"]
    assert (record["outcome"], record["error_code"]) == ("failed", "task_already_decided")
    row = next(
        t
        for t in items(await tasks(client, "procurement", employee, status="all"))
        if t["id"] == task["id"]
    )
    assert (row["status"], row["close_reason"]) == ("closed", "decided_elsewhere")


async def test_a_failed_source_call_leaves_the_task_pending_and_audits_failed(
    app: FastAPI, client: httpx.AsyncClient, employee: Account, connected: RunningSandbox
) -> None:
    task = (await synced(app, client, employee))[0]
    connected.state.inject("oracle", Fault(503, retry_after=7, times=100))
    response = await client.post(
        f"{TASKS}/{task['id']}/actions",
        json={"action": "APPROVE"},
        headers={**employee.headers, "Idempotency-Key": "k"},
    )
    assert response.status_code == 503
    assert problem_code(response) == "upstream_unavailable"
    assert response.headers["Retry-After"]
    connected.state.faults["oracle"].clear()
    await settle(app)
    row = items(await tasks(client, "procurement", employee))
    assert task["id"] in {t["id"] for t in row}
    (record,) = (await client.get(APPROVALS, headers=employee.headers)).json()["items"]
    assert (record["outcome"], record["error_code"]) == ("failed", "upstream_unavailable")
    # The 503 was not stored: the same key tries again, and now succeeds.
    retried = await client.post(
        f"{TASKS}/{task['id']}/actions",
        json={"action": "APPROVE"},
        headers={**employee.headers, "Idempotency-Key": "k"},
    )
    assert retried.status_code == 200, retried.text


async def test_a_failed_sync_keeps_the_last_good_copy(
    app: FastAPI, client: httpx.AsyncClient, employee: Account, connected: RunningSandbox
) -> None:
    await synced(app, client, employee)
    before = await tasks(client, "procurement", employee)
    connected.state.inject("oracle", Fault(503, times=1000))
    page = await tasks(client, "procurement", employee, refresh="true")
    assert page["refresh"] == "failed"
    assert page["synced_at"] == before["synced_at"]
    assert page["items"] == before["items"]
    connected.state.faults["oracle"].clear()
    refreshed = await tasks(client, "procurement", employee, refresh="true")
    assert refreshed["refresh"] == "synced"
    assert refreshed["synced_at"] > before["synced_at"]


async def test_bulk_answers_each_item(
    app: FastAPI, client: httpx.AsyncClient, employee: Account, connected: RunningSandbox
) -> None:
    listed = await synced(app, client, employee)
    unknown = str(uuid.uuid4())
    response = await client.post(
        f"{TASKS}/actions",
        json={
            "items": [{"id": t["id"], "action": "APPROVE"} for t in listed]
            + [{"id": unknown, "action": "REJECT"}]
        },
        headers=employee.headers,
    )
    assert response.status_code == 200, response.text
    results = {r["id"]: r for r in response.json()["results"]}
    assert all(results[t["id"]]["outcome"] == "succeeded" for t in listed)
    assert (results[unknown]["outcome"], results[unknown]["code"]) == ("failed", "task_not_found")
    assert len(connected.state.task_decisions) == len(listed)


async def test_bad_input_and_other_peoples_tasks(
    app: FastAPI,
    client: httpx.AsyncClient,
    employee: Account,
    connected: RunningSandbox,
    org: uuid.UUID,
) -> None:
    task = (await synced(app, client, employee))[0]
    url = f"{TASKS}/{task['id']}/actions"
    h = employee.headers
    cases: list[tuple[Any, dict[str, str], str]] = [
        ({"action": "DELEGATE"}, h, "action"),
        ({"action": "APPROVE", "comment": "x" * 2001}, h, "comment"),
        ({"action": "APPROVE", "extra": 1}, h, "extra"),
        (None, h, "body"),
        ({"action": "APPROVE"}, {**h, "Idempotency-Key": "k" * 201}, "idempotency-key"),
    ]
    for body, headers, field in cases:
        response = await client.post(url, json=body, headers=headers)
        assert response.status_code == 422, (body, response.text)
        assert problem_code(response) == "validation_error"
        assert field in response.text.lower()
    too_many = [{"id": task["id"], "action": "APPROVE"}] * 51
    response = await client.post(f"{TASKS}/actions", json={"items": too_many}, headers=h)
    assert response.status_code == 422
    assert "items" in response.text
    response = await client.post(f"{TASKS}/actions", json={"items": []}, headers=h)
    assert response.status_code == 422

    colleague = await logged_in_user(client, org)
    stranger = await logged_in_user(client, await create_org())
    for other in (colleague, stranger):
        for response in (
            await client.get(f"{TASKS}/{task['id']}", headers=other.headers),
            await client.post(url, json={"action": "APPROVE"}, headers=other.headers),
        ):
            assert response.status_code == 404
            assert problem_code(response) == "task_not_found"
    unknown = await client.get(f"{TASKS}/{uuid.uuid4()}", headers=h)
    assert unknown.status_code == 404
    assert connected.state.task_decisions == {}


async def test_a_non_employee_gets_an_empty_inbox(
    app: FastAPI, client: httpx.AsyncClient, org: uuid.UUID, connected: RunningSandbox
) -> None:
    contractor = await logged_in_user(client, org, user_type="CONTRACTOR")
    page = await tasks(client, "procurement", contractor, refresh="true")
    assert (page["items"], page["total"], page["refresh"]) == ([], 0, "skipped")


async def test_the_audit_trail_is_mine_or_for_admins_the_organisation(
    app: FastAPI,
    client: httpx.AsyncClient,
    employee: Account,
    admin: Account,
    connected: RunningSandbox,
) -> None:
    task = (await synced(app, client, employee))[0]
    await client.post(
        f"{TASKS}/{task['id']}/actions",
        json={"action": "REJECT", "comment": "no"},
        headers=employee.headers,
    )
    await settle(app)
    mine = (await client.get(APPROVALS, headers=employee.headers)).json()
    assert mine["total"] == 1
    org_wide = (await client.get(APPROVALS, headers=admin.headers)).json()
    assert org_wide["total"] == 1
    filtered = await client.get(
        APPROVALS, headers=admin.headers, params={"user_id": str(admin.user_id)}
    )
    assert filtered.json()["total"] == 0
    refused = await client.get(
        APPROVALS, headers=employee.headers, params={"user_id": str(admin.user_id)}
    )
    assert refused.status_code == 403
    assert problem_code(refused) == "approvals_forbidden"
    acted = mine["items"][0]["acted_at"]
    later = await client.get(
        APPROVALS, headers=employee.headers, params={"from": "2999-01-01T00:00:00Z"}
    )
    assert later.json()["total"] == 0
    window = await client.get(
        APPROVALS, headers=employee.headers, params={"from": acted, "to": acted}
    )
    assert window.json()["total"] == 1
    backwards = await client.get(
        APPROVALS,
        headers=employee.headers,
        params={"from": "2030-01-01T00:00:00Z", "to": "2020-01-01T00:00:00Z"},
    )
    assert backwards.status_code == 422
    assert problem_code(backwards) == "invalid_time_range"

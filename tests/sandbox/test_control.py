"""The sandbox's own endpoints: the actions it received, decisions taken elsewhere, faults."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from app.integrations.errors import AlreadyDecidedError, IntegrationError
from app.integrations.oracle_fusion import OracleFusionClient
from app.integrations.yardi import YardiClient
from app.sandbox.state import TaskNotPending
from tests.integrations.conftest import FakeClock, RunningSandbox

Oracle = Callable[..., OracleFusionClient]
Yardi = Callable[..., YardiClient]
EMMA = "EMMA.EMPLOYEE"
TASKS = "/oracle/bpm/api/4.0/tasks"


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")


async def _get(sandbox: RunningSandbox, path: str, **params: str) -> Any:
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{sandbox.url}{path}", params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def _post(sandbox: RunningSandbox, path: str, body: Any) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.post(f"{sandbox.url}{path}", json=body)


async def test_oracle_actions_show_every_call_with_its_outcome(
    oracle: Oracle, sandbox: RunningSandbox, clock: FakeClock
) -> None:
    client = oracle(EMMA)
    task = (await client.list_tasks(category="Purchasing"))[0]
    stale = await client.get_task(task.number)
    assert (await _get(sandbox, "/oracle/actions")) == {"items": [], "total": 0}

    await client.act_on_task(task.number, action="APPROVE", comment="Within budget", task=stale)
    clock.advance(5)
    with pytest.raises(AlreadyDecidedError):  # a stale detail: the PUT reaches BPM, 409
        await client.act_on_task(task.number, action="REJECT", task=stale)
    with pytest.raises(AlreadyDecidedError):  # a fresh detail: refused before calling
        await client.act_on_task(task.number, action="REJECT")

    listed = await _get(sandbox, "/oracle/actions")
    assert listed["total"] == 2
    second, first = listed["items"]
    assert first == {
        "id": 1,
        "source": "oracle",
        "task": str(task.number),
        "task_id": task.task_id,
        "workflow_name": None,
        "user": EMMA,
        "action": "APPROVE",
        "comment": "Within budget",
        "at": _iso(clock.now - 5),
        "outcome": "succeeded",
        "status": 200,
    }
    assert (second["action"], second["outcome"], second["status"]) == (
        "REJECT",
        "already_decided",
        409,
    )
    assert second["at"] == _iso(clock.now)
    assert (await _get(sandbox, "/oracle/actions", task=str(task.number)))["total"] == 2
    assert (await _get(sandbox, "/oracle/actions", task="1"))["total"] == 0
    assert (await _get(sandbox, "/oracle/actions", user="emma.employee"))["total"] == 2
    assert (await _get(sandbox, "/oracle/actions", limit="1"))["items"] == [second]


async def test_refused_oracle_actions_are_recorded_too(
    oracle: Oracle, sandbox: RunningSandbox
) -> None:
    number = (await oracle(EMMA).list_tasks())[0].number
    async with httpx.AsyncClient(auth=(EMMA, "sandbox-password")) as http:
        url = f"{sandbox.url}{TASKS}"
        answers = [
            await http.put(f"{url}/{number}", json={"action": {"id": "DELEGATE"}}),
            await http.put(f"{url}/{number}", content=b"{not json"),
            await http.put(f"{url}/99", json={"action": {"id": "APPROVE"}}),
            await http.put(f"{url}/{number}", json={"action": {"id": "APPROVE"}}),
        ]
        anonymous = await http.put(f"{url}/{number}", json={"action": {}}, auth=("x", "y"))
    assert [a.status_code for a in answers] == [400, 400, 404, 200]
    assert anonymous.status_code == 401
    items = (await _get(sandbox, "/oracle/actions"))["items"]
    assert [(i["action"], i["outcome"], i["status"]) for i in reversed(items)] == [
        ("DELEGATE", "action_not_allowed", 400),
        (None, "bad_request", 400),
        ("APPROVE", "not_found", 404),
        ("APPROVE", "succeeded", 200),
    ]
    assert items[1]["task_id"] is None  # an unknown task has no taskId


async def test_yardi_actions_show_every_call_with_its_outcome(
    yardi: Yardi, sandbox: RunningSandbox
) -> None:
    client = yardi()
    first = (await client.pending_approvals(approver=EMMA))[0]
    ids = {"approver": EMMA, "workflow_name": first.workflow_name, "record_id": first.record_id}
    stale = await client.approval_detail(**ids)
    await client.take_action(**ids, action="Approve", comment="Good tenant", detail=stale)
    with pytest.raises(AlreadyDecidedError):
        await client.take_action(**ids, action="Reject", detail=stale)
    items = (await _get(sandbox, "/yardi/actions"))["items"]
    assert [(i["action"], i["outcome"]) for i in items] == [
        ("Reject", "already_decided"),
        ("Approve", "succeeded"),
    ]
    assert items[1] | {"at": None} == {
        "id": 1,
        "source": "yardi",
        "task": first.record_id,
        "task_id": None,
        "workflow_name": first.workflow_name,
        "user": EMMA,
        "action": "Approve",
        "comment": "Good tenant",
        "at": None,
        "outcome": "succeeded",
        "status": 200,
    }
    assert (await _get(sandbox, "/oracle/actions"))["total"] == 0
    assert (await _get(sandbox, "/yardi/actions", task=first.record_id))["total"] == 2
    with pytest.raises(IntegrationError):  # an approver Yardi does not know
        await client.take_action(**{**ids, "approver": "NOBODY"}, action="Approve", detail=stale)
    unknown = (await _get(sandbox, "/yardi/actions", user="nobody"))["items"]
    assert [(a["task"], a["outcome"]) for a in unknown] == [(first.record_id, "not_found")]


async def test_a_task_decided_elsewhere_leaves_the_listing_and_is_not_a_received_action(
    oracle: Oracle, sandbox: RunningSandbox
) -> None:
    client = oracle(EMMA)
    task = (await client.list_tasks(category="Purchasing"))[0]
    decided = await _post(
        sandbox,
        "/oracle/decisions",
        {"task": task.number, "action": "approve", "actor": "ALEX.ADMIN", "comment": "ok"},
    )
    assert decided.status_code == 200, decided.text
    assert decided.json() == {"outcome": "APPROVE", "actor": "ALEX.ADMIN", "comment": "ok"}
    assert task.number not in {t.number for t in await client.list_tasks()}
    detail = await client.get_task(task.number)
    assert (detail.state, detail.outcome, detail.actions) == ("COMPLETED", "APPROVE", ())
    assert detail.identification_key is not None
    assert (await client.get_requisition(int(detail.identification_key))).status == "APPROVED"
    assert (await _get(sandbox, "/oracle/actions"))["total"] == 0

    again = await _post(sandbox, "/oracle/decisions", {"task": task.number, "action": "REJECT"})
    assert (again.status_code, again.json()["reason"]) == (409, "already_decided")
    unknown = await _post(sandbox, "/oracle/decisions", {"task": "99", "action": "REJECT"})
    assert (unknown.status_code, unknown.json()["reason"]) == (404, "not_found")
    for bad in (
        {"action": "APPROVE"},
        {"task": True, "action": "APPROVE"},
        {"task": task.number, "action": "DELEGATE"},
        {"task": task.number, "action": "APPROVE", "comment": 3},
        [1],
    ):
        assert (await _post(sandbox, "/oracle/decisions", bad)).status_code == 400, bad


async def test_a_lease_decided_elsewhere_leaves_the_listing(
    yardi: Yardi, sandbox: RunningSandbox
) -> None:
    client = yardi()
    first, second = await client.pending_approvals(approver=EMMA)
    decided = await _post(
        sandbox, "/yardi/decisions", {"record_id": first.record_id, "action": "reject"}
    )
    assert decided.json() == {"outcome": "Reject", "actor": "sandbox", "comment": None}
    assert [a.record_id for a in await client.pending_approvals(approver=EMMA)] == [
        second.record_id
    ]
    detail = await client.approval_detail(
        approver=EMMA, workflow_name=first.workflow_name, record_id=first.record_id
    )
    assert (detail.status, detail.actions) == ("Rejected", ())
    again = await _post(sandbox, "/yardi/decisions", {"record_id": first.record_id, "action": "x"})
    assert again.status_code == 400
    gone = await _post(sandbox, "/yardi/decisions", {"record_id": 1, "action": "Approve"})
    assert gone.status_code == 404


def test_the_state_helpers_decide_as_the_endpoints_do(sandbox: RunningSandbox) -> None:
    state = sandbox.state
    number = state.data.task_number(0, 1, 2)
    assert state.decide_task(number, "reject", actor="someone").outcome == "REJECT"
    with pytest.raises(TaskNotPending) as caught:
        state.decide_task(number, "APPROVE")
    assert caught.value.reason == "already_decided"
    record = state.data.leases_of(1, [0])[0].record_id
    assert state.decide_lease(record, "APPROVE").outcome == "Approve"
    with pytest.raises(ValueError):
        state.decide_lease(record, "maybe")


async def test_faults_are_forced_over_http_and_spare_the_sandboxs_own_paths(
    sandbox: RunningSandbox,
) -> None:
    forced = await _post(
        sandbox, "/faults", {"system": "oracle", "status": 503, "retry_after": 7, "times": 2}
    )
    assert forced.status_code == 201, forced.text
    assert forced.json() == {
        "system": "oracle",
        "status": 503,
        "retry_after": 7,
        "times": 2,
        "delay_seconds": 0.0,
        "token": None,
    }
    listed = await _get(sandbox, "/faults")
    assert [f["status"] for f in listed["oracle"]] == [503]
    assert listed["yardi"] == listed["fcm"] == []
    await _get(sandbox, "/oracle/actions")  # the sandbox's own path takes no fault
    async with httpx.AsyncClient(auth=("integration", "sandbox-password")) as http:
        statuses = [(await http.get(f"{sandbox.url}{TASKS}")) for _ in range(3)]
        assert [r.status_code for r in statuses] == [503, 503, 200]
        assert statuses[0].headers["Retry-After"] == "7"
        await _post(sandbox, "/faults", {"system": "yardi", "status": 429})
        async with httpx.AsyncClient() as plain:
            cleared = await plain.delete(f"{sandbox.url}/faults", params={"system": "yardi"})
            assert cleared.status_code == 204
            assert (await plain.delete(f"{sandbox.url}/faults?system=ftp")).status_code == 400
    assert (await _get(sandbox, "/faults"))["yardi"] == []
    for bad in (
        {"system": "ftp", "status": 503},
        {"system": "oracle", "status": 200},
        {"system": "oracle", "status": 503, "times": 0},
        {"system": "oracle", "status": 503, "retry_after": -1},
        {"system": "oracle", "status": 503, "delay_seconds": "1"},
        {"system": "oracle", "status": True},
        {"system": "oracle", "status": 503, "token": "device-token"},  # tokens are FCM's
        {"system": "fcm", "status": 503, "token": 7},
        "oracle",
    ):
        assert (await _post(sandbox, "/faults", bad)).status_code == 400, bad


async def test_a_bad_limit_is_refused(sandbox: RunningSandbox) -> None:
    async with httpx.AsyncClient() as http:
        for limit in ("0", "1001", "x"):
            response = await http.get(f"{sandbox.url}/oracle/actions", params={"limit": limit})
            assert response.status_code == 400

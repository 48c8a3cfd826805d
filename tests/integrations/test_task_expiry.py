"""Tasks and approvals that appeared after the start expire; the base inbox never does.

The sandbox's clock is the fake one, so a generation passes when the test says so. A short
lifetime keeps the arithmetic readable: a task of generation 1 is pending at generations 1 to 3
and expired from generation 4.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from app.core.settings import SandboxSettings
from app.integrations.errors import AlreadyDecidedError
from app.integrations.oracle_fusion import OracleFusionClient
from app.integrations.yardi import YardiClient
from app.sandbox.data import DataSet
from tests.integrations.conftest import FakeClock, RunningSandbox

Oracle = Callable[..., OracleFusionClient]
Yardi = Callable[..., YardiClient]
LIFETIME = 3
INTERVAL = 300


@pytest.fixture
def sandbox_settings(sandbox_settings: SandboxSettings) -> SandboxSettings:
    """The shared sandbox, with tasks that expire after a few generations."""
    return sandbox_settings.model_copy(
        update={"new_task_interval_seconds": INTERVAL, "task_lifetime_generations": LIFETIME}
    )


def someone_with_a_task_in(data: DataSet, generation: int) -> int:
    return next(i for i in range(data.users) if data.task_slots(generation, i))


async def test_a_later_task_expires_after_its_lifetime_and_the_base_inbox_stays(
    oracle: Oracle, sandbox: RunningSandbox, clock: FakeClock
) -> None:
    data = sandbox.state.data
    person = someone_with_a_task_in(data, 1)
    client = oracle(data.person(person).username)
    base = [t.number for t in data.tasks_of(person, [0])]
    clock.advance(INTERVAL)
    (new,) = data.tasks_of(person, [1])
    assert [t.number for t in await client.list_tasks()] == [*base, new.number]

    clock.advance((LIFETIME - 1) * INTERVAL)  # generation 3: the last one it is pending in
    stale = await client.get_task(new.number)
    assert stale.state == "ASSIGNED"
    assert new.number in {t.number for t in await client.list_tasks()}

    clock.advance(INTERVAL)  # generation 4
    pending = [t.number for t in await client.list_tasks()]
    assert new.number not in pending
    assert pending[: len(base)] == base
    expired = await client.get_task(new.number)
    assert (expired.state, expired.outcome, expired.actions) == ("EXPIRED", None, ())
    assert expired.is_decided
    expired_at = sandbox.state.started_at + (1 + LIFETIME) * INTERVAL
    assert expired.updated_at == datetime.fromtimestamp(expired_at, UTC)
    assert [t.number for t in await client.list_tasks(status="EXPIRED")] == [new.number]
    with pytest.raises(AlreadyDecidedError):
        await client.act_on_task(new.number, action="APPROVE")  # refused from the detail
    with pytest.raises(AlreadyDecidedError) as caught:
        await client.act_on_task(new.number, action="APPROVE", task=stale)  # and by BPM
    assert caught.value.status == 409
    assert "expired" in caught.value.detail
    everyone = await oracle(page_size=500).list_tasks(assignment="ALL")
    assert new.number not in {t.number for t in everyone}
    assert new.number not in sandbox.state.task_decisions


async def test_a_task_decided_before_it_expires_stays_completed(
    oracle: Oracle, sandbox: RunningSandbox, clock: FakeClock
) -> None:
    data = sandbox.state.data
    person = someone_with_a_task_in(data, 1)
    client = oracle(data.person(person).username)
    clock.advance(INTERVAL)
    (new,) = data.tasks_of(person, [1])
    await client.act_on_task(new.number, action="REJECT")
    clock.advance(10 * LIFETIME * INTERVAL)
    done = await client.get_task(new.number)
    assert (done.state, done.outcome) == ("COMPLETED", "REJECT")
    assert [t.number for t in await client.list_tasks(status="COMPLETED")] == [new.number]
    assert new.number not in {t.number for t in await client.list_tasks(status="EXPIRED")}


async def test_pending_tasks_stay_bounded_however_long_the_sandbox_runs(
    oracle: Oracle, sandbox: RunningSandbox, clock: FakeClock
) -> None:
    data = sandbox.state.data
    clock.advance(1000 * INTERVAL)
    live = range(1000 - LIFETIME + 1, 1001)
    expected = 4 * data.users + sum(len(data.generation_task_numbers(g)) for g in live)
    everyone = await oracle(page_size=500).list_tasks(assignment="ALL")
    assert len(everyone) == expected
    generations = {(t.number - 100000) // 4 // data.users for t in everyone}
    assert generations == {0, *live}
    for person in range(5):
        mine = await oracle(data.person(person).username).list_tasks()
        assert 4 <= len(mine) <= 4 + LIFETIME


async def test_a_later_approval_expires_like_a_bpm_task(
    yardi: Yardi, sandbox: RunningSandbox, clock: FakeClock
) -> None:
    data = sandbox.state.data
    person = next(i for i in range(data.users) if data.lease_slots(1, i))
    approver = data.person(person).username
    client = yardi()
    base = [a.record_id for a in await client.pending_approvals(approver=approver)]
    assert len(base) == 2
    clock.advance(INTERVAL)
    (new,) = [
        a for a in await client.pending_approvals(approver=approver) if a.record_id not in base
    ]
    ids: dict[str, Any] = {
        "approver": approver,
        "workflow_name": new.workflow_name,
        "record_id": new.record_id,
    }
    stale = await client.approval_detail(**ids)
    assert stale.actions == ("Approve", "Reject")

    clock.advance(LIFETIME * INTERVAL)
    assert [a.record_id for a in await client.pending_approvals(approver=approver)] == base
    expired = await client.approval_detail(**ids)
    assert (expired.status, expired.actions) == ("Expired", ())
    with pytest.raises(AlreadyDecidedError):
        await client.take_action(**ids, action="Approve")
    with pytest.raises(AlreadyDecidedError) as caught:
        await client.take_action(**ids, action="Approve", detail=stale)
    assert caught.value.status == 200  # in <Messages>, as Yardi reports a decided record
    assert "already expired" in caught.value.detail
    assert int(new.record_id) not in sandbox.state.lease_decisions


async def test_the_requisition_behind_an_expired_purchasing_task_is_no_longer_pending(
    oracle: Oracle, sandbox: RunningSandbox, clock: FakeClock
) -> None:
    data = sandbox.state.data
    person = someone_with_a_task_in(data, 2)  # an even generation's new task is Purchasing
    client = oracle(data.person(person).username)
    clock.advance(2 * INTERVAL)
    (new,) = data.tasks_of(person, [2])
    assert new.is_purchasing
    assert (await client.get_requisition(new.requisition_id)).status == "PENDING APPROVAL"
    clock.advance(LIFETIME * INTERVAL)
    assert (await client.get_task(new.number)).state == "EXPIRED"
    returned = await client.get_requisition(new.requisition_id)
    assert returned.status == "RETURNED"
    assert returned == await client.get_requisition_by_number(returned.number or "")

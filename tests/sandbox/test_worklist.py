"""The administrator's ``assignment=ALL`` listing: cheap offset paging, same answers as one page.

Every expectation is checked against a brute-force walk of the data set, so the counting and
bisection that skip to an offset cannot drift from what the tasks actually are.
"""

from __future__ import annotations

import random

import httpx
import pytest

from app.core.settings import SandboxSettings
from app.sandbox.oracle.worklist import Worklist
from app.sandbox.state import Decision, SandboxState
from tests.integrations.conftest import FakeClock, RunningSandbox

TASKS = "/oracle/bpm/api/4.0/tasks"
BASIC = ("integration", "sandbox-password")
STATUSES = ("ASSIGNED", "COMPLETED", "EXPIRED")
CONTEXTS = (None, "hcm", "fscm")
LIFETIME = 4
INTERVAL = 300


@pytest.fixture
def sandbox_settings(sandbox_settings: SandboxSettings) -> SandboxSettings:
    """The shared sandbox, with tasks that expire after a few generations."""
    return sandbox_settings.model_copy(
        update={"new_task_interval_seconds": INTERVAL, "task_lifetime_generations": LIFETIME}
    )


def brute_force(state: SandboxState, status: str, context: str | None) -> list[int]:
    """Every task of ``status`` (and ``context``), walked one by one in number order."""
    data, generations = state.data, state.generations()
    out = []
    for generation in range(generations + 1):
        for approver in range(data.users):
            for slot in data.task_slots(generation, approver):
                number = data.task_number(generation, approver, slot)
                if context is not None and context != ("fscm" if slot >= 2 else "hcm"):
                    continue
                if number in state.task_decisions:
                    current = "COMPLETED"
                elif generation and generations - generation >= LIFETIME:
                    current = "EXPIRED"
                else:
                    current = "ASSIGNED"
                if current == status:
                    out.append(number)
    return out


def decide(state: SandboxState, numbers: list[int]) -> None:
    for number in numbers:
        state.task_decisions[number] = Decision("APPROVE", None, "integration", state.clock())


def decide_some(state: SandboxState, rng: random.Random, share: float) -> None:
    pending = brute_force(state, "ASSIGNED", None)
    decide(state, [n for n in pending if rng.random() < share])


def test_every_offset_and_limit_match_a_walk_of_the_data_set() -> None:
    clock = FakeClock()
    settings = SandboxSettings(
        users=13, seed=7, new_task_interval_seconds=INTERVAL, task_lifetime_generations=LIFETIME
    )
    state = SandboxState(settings, public_key=None, clock=clock)
    worklist = Worklist(state)
    rng = random.Random(1)
    for _ in range(3):
        clock.advance(3 * INTERVAL)
        decide_some(state, rng, 0.3)  # between listings, as a sweep that acts would
        generations = state.generations()
        for status in STATUSES:
            for context in CONTEXTS:
                expected = brute_force(state, status, context)
                for limit in (1, 4, 0):
                    for offset in range(len(expected) + 2):
                        page, more = worklist.admin_page(
                            generations=generations,
                            status=status,
                            context=context,
                            offset=offset,
                            limit=limit,
                        )
                        end = None if limit <= 0 else offset + limit
                        assert page == expected[offset:end], (status, context, offset, limit)
                        assert more == (end is not None and end < len(expected))
    assert worklist.admin_page(
        generations=state.generations(), status="ASSIGNED", context="crm", offset=0, limit=0
    ) == ([], False)


async def page_through(
    http: httpx.AsyncClient, url: str, limit: int, **params: str
) -> tuple[list[int], int]:
    numbers: list[int] = []
    pages = 0
    while True:
        body = (
            await http.get(url, params={**params, "limit": limit, "offset": len(numbers)})
        ).json()
        pages += 1
        numbers.extend(item["number"] for item in body["items"])
        assert body["count"] == len(body["items"]) <= limit
        if not body["hasMore"]:
            return numbers, pages


async def test_paging_through_all_with_a_small_limit_returns_one_big_page(
    sandbox: RunningSandbox, clock: FakeClock
) -> None:
    state = sandbox.state
    clock.advance(9 * INTERVAL)  # generations 1-5 expired, 6-9 pending
    rng = random.Random(3)
    decide_some(state, rng, 0.2)
    async with httpx.AsyncClient(auth=BASIC) as http:
        url = f"{sandbox.url}{TASKS}"
        for status in STATUSES:
            for context in CONTEXTS:
                params = {"assignment": "ALL", "status": status}
                if context:
                    params["applicationContext"] = context
                big = (await http.get(url, params={**params, "limit": "0"})).json()
                one_page = [item["number"] for item in big["items"]]
                paged, pages = await page_through(http, url, 7, **params)
                assert paged == one_page == brute_force(state, status, context)
                assert pages == max(1, -(-len(one_page) // 7))  # hasMore is exact
                if status != "COMPLETED":
                    assert not set(paged) & set(state.task_decisions)
                states = {item["state"] for item in big["items"]}
                assert states <= {status}
        assert one_page  # the last listing (EXPIRED, fscm) is not trivially empty


async def test_a_person_sees_only_their_pending_tasks_in_the_window(
    sandbox: RunningSandbox, clock: FakeClock
) -> None:
    data = sandbox.state.data
    clock.advance(9 * INTERVAL)
    user = (data.person(1).username, "sandbox-password")
    async with httpx.AsyncClient(auth=user) as http:
        listed = (await http.get(f"{sandbox.url}{TASKS}", params={"limit": "0"})).json()
    expected = [t.number for t in data.tasks_of(1, [0, *range(6, 10)])]
    assert [item["number"] for item in listed["items"]] == expected

"""The profile pipeline end to end: PUT /users/me/sync-profile reads the sandbox's HCM over HTTP."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from app.contracts.hr import WorkerProfileSynced
from app.contracts.user import UserProfileSyncRequested, UserUpdated
from app.core.db import session_scope
from app.events import publish
from app.events.outbox.models import OutboxDelivery
from app.events.testing import capture_events, run_pending
from app.sandbox import Fault
from tests.factories import Account, connect_to_sandbox, logged_in_user, problem_code, settle
from tests.integrations.conftest import RunningSandbox

ME = "/api/v1/users/me"
SYNC = "/api/v1/users/me/sync-profile"
pytestmark = pytest.mark.usefixtures("connected")


@pytest.mark.parametrize("version", [1, 4])
async def test_a_sync_returns_the_profile_hcm_reports(
    app: FastAPI,
    client: httpx.AsyncClient,
    org: uuid.UUID,
    employee: Account,
    sandbox: RunningSandbox,
    demo_key: tuple[object, str],
    version: int,
) -> None:
    await connect_to_sandbox(
        org, sandbox.url, jwt_private_key=demo_key[1], framework_version=version
    )
    emma = sandbox.state.data.person(1)
    with capture_events(app.state.emitter) as captured:
        response = await client.put(SYNC, headers=employee.headers, params={"first_time": "true"})
    assert response.status_code == 200, response.text
    me = response.json()
    assert (me["first_name"], me["last_name"]) == ("Emma", "Employee")
    assert me["person_number"] == "100002"
    assert me["work_email"] == "emma.employee@example.com"
    assert (me["job"], me["department"], me["business_unit"]) == (
        emma.job_name,
        emma.department,
        "Vision Operations",
    )
    assert me["line_managers"] == [
        {"person_number": "100001", "display_name": "Alex Admin", "email": "alex.admin@example.com"}
    ]
    assert me["profile_synced_at"] is not None
    assert captured.names() == [
        "user.syncProfile",
        "hr.profile.synced",
        "user.updated",
        "user.sync.task.notifications",
    ]
    assert captured.one(WorkerProfileSynced).first_time is True
    assert "line_managers" in captured.one(UserUpdated).changed_fields
    stored = (await client.get(ME, headers=employee.headers)).json()
    assert {k: stored[k] for k in me if k != "organization"} == {
        k: me[k] for k in me if k != "organization"
    }


async def test_a_project_manager_is_not_a_line_manager(
    client: httpx.AsyncClient, org: uuid.UUID, sandbox: RunningSandbox
) -> None:
    # Person 10 (100011) has a line manager (person 1) and a project manager (person 12).
    person = sandbox.state.data.person(10)
    user = await logged_in_user(client, org, person_number=person.person_number)
    response = await client.put(SYNC, headers=user.headers)
    assert response.status_code == 200, response.text
    assert [m["person_number"] for m in response.json()["line_managers"]] == ["100002"]


async def test_without_a_person_number_the_worker_is_found_by_username(
    client: httpx.AsyncClient, org: uuid.UUID
) -> None:
    user = await logged_in_user(client, org, oracle_username="olivia.brown")
    response = await client.put(SYNC, headers=user.headers)
    assert response.status_code == 200, response.text
    me = response.json()
    assert (me["person_number"], me["first_name"], me["last_name"]) == ("100003", "Olivia", "Brown")
    assert [m["display_name"] for m in me["line_managers"]] == ["Alex Admin"]


async def test_a_person_number_hcm_no_longer_knows_falls_back_to_the_username(
    client: httpx.AsyncClient, org: uuid.UUID
) -> None:
    user = await logged_in_user(client, org, person_number="999999", oracle_username="LIAM.SMITH")
    response = await client.put(SYNC, headers=user.headers)
    assert response.status_code == 200, response.text
    assert (response.json()["person_number"], response.json()["last_name"]) == ("100004", "Smith")


@pytest.mark.parametrize(
    "identity",
    [
        {"person_number": "999999"},
        {"oracle_username": "NOBODY.HERE"},
        {"person_number": "999999", "oracle_username": "NOBODY.HERE"},
        {"person_number": "not-a-number"},
        {},
    ],
)
async def test_a_worker_hcm_does_not_know_is_a_404_and_changes_nothing(
    app: FastAPI, client: httpx.AsyncClient, org: uuid.UUID, identity: dict[str, str]
) -> None:
    user = await logged_in_user(client, org, first_name="Kept", **identity)
    with capture_events(app.state.emitter) as captured:
        response = await client.put(SYNC, headers=user.headers)
    assert response.status_code == 404, response.text
    assert problem_code(response) == "worker_not_found"
    assert "hr.profile.synced" not in captured.names()
    me = (await client.get(ME, headers=user.headers)).json()
    assert (me["first_name"], me["profile_synced_at"]) == ("Kept", None)


async def _scheduled_sync(
    user: Account, person_number: str, requested_by: str = "scheduler"
) -> None:
    async with session_scope():
        await publish(
            UserProfileSyncRequested(
                organization_id=user.organization_id,
                user_id=user.user_id,
                person_number=person_number,
                requested_by=requested_by,
            )
        )


async def _deliveries() -> list[OutboxDelivery]:
    async with session_scope() as session:
        query = select(OutboxDelivery).where(OutboxDelivery.listener_id == "hr.profile.sync")
        return list((await session.scalars(query)).all())


@pytest.mark.parametrize("requested_by", ["scheduler", "admin"])
async def test_a_scheduled_sync_runs_durably_in_the_relay(
    app: FastAPI, client: httpx.AsyncClient, employee: Account, requested_by: str
) -> None:
    with capture_events(app.state.emitter) as captured:
        await _scheduled_sync(employee, "100002", requested_by)
        assert "hr.profile.synced" not in captured.names()  # not inline: the relay runs it
        await settle(app)
    assert captured.one(WorkerProfileSynced).profile.person_number == "100002"
    assert [d.status for d in await _deliveries()] == ["done"]
    me = (await client.get(ME, headers=employee.headers)).json()
    assert [m["display_name"] for m in me["line_managers"]] == ["Alex Admin"]


async def test_a_users_own_sync_leaves_nothing_for_the_relay_to_do(
    app: FastAPI, client: httpx.AsyncClient, employee: Account
) -> None:
    with capture_events(app.state.emitter) as captured:
        assert (await client.put(SYNC, headers=employee.headers)).status_code == 200
        await settle(app)
    assert captured.names().count("hr.profile.synced") == 1


async def test_a_scheduled_sync_of_an_unknown_worker_is_recorded_not_retried(
    app: FastAPI, client: httpx.AsyncClient, org: uuid.UUID
) -> None:
    user = await logged_in_user(client, org, person_number="999999")
    with capture_events(app.state.emitter) as captured:
        await _scheduled_sync(user, "999999")
        await settle(app)
    assert "hr.profile.synced" not in captured.names()
    (delivery,) = await _deliveries()
    assert (delivery.status, delivery.attempts) == ("dead", 1)
    assert "worker_not_found" in (delivery.last_error or "")


async def test_a_scheduled_sync_is_retried_when_oracle_is_down(
    app: FastAPI, client: httpx.AsyncClient, employee: Account, sandbox: RunningSandbox
) -> None:
    sandbox.state.inject("oracle", Fault(503, retry_after=120))
    await _scheduled_sync(employee, "100002")
    await run_pending(app.state.emitter)  # or the app's own relay, whichever claims it first
    deadline = datetime.now(UTC) + timedelta(seconds=10)
    while (delivery := (await _deliveries())[0]).status != "pending":
        assert datetime.now(UTC) < deadline, delivery.status
        await asyncio.sleep(0.02)
    assert delivery.attempts == 1
    wait = delivery.available_at.replace(tzinfo=UTC) - datetime.now(UTC)
    assert timedelta(seconds=100) < wait <= timedelta(seconds=120)  # Oracle's Retry-After
    later = datetime.now(UTC) + timedelta(seconds=121)
    await run_pending(app.state.emitter, clock=lambda: later)
    assert [d.status for d in await _deliveries()] == ["done"]
    me = (await client.get(ME, headers=employee.headers)).json()
    assert me["profile_synced_at"] is not None


@pytest.mark.parametrize(
    ("fault", "retry_after", "cause"),
    [
        (Fault(503, retry_after=30), "30", "upstream_unavailable"),
        (Fault(429, retry_after=2), "2", "upstream_rate_limited"),
    ],
)
async def test_oracle_down_or_throttling_is_a_503_with_retry_after(
    client: httpx.AsyncClient,
    employee: Account,
    sandbox: RunningSandbox,
    fault: Fault,
    retry_after: str,
    cause: str,
) -> None:
    sandbox.state.inject("oracle", fault)
    response = await client.put(SYNC, headers=employee.headers)
    assert response.status_code == 503, response.text
    assert problem_code(response) == "profile_sync_failed"
    assert response.headers["Retry-After"] == retry_after
    assert response.json()["causes"] == [cause]
    assert (await client.get(ME, headers=employee.headers)).json()["profile_synced_at"] is None
    # The fault has passed: the next sync works.
    assert (await client.put(SYNC, headers=employee.headers)).status_code == 200


async def test_oracle_refusing_our_credentials_is_a_502(
    client: httpx.AsyncClient,
    org: uuid.UUID,
    employee: Account,
    sandbox: RunningSandbox,
    demo_key: tuple[object, str],
) -> None:
    await connect_to_sandbox(org, sandbox.url, jwt_private_key=demo_key[1], password="wrong")
    response = await client.put(SYNC, headers=employee.headers)
    assert response.status_code == 502, response.text
    assert response.json()["causes"] == ["upstream_auth"]
    assert "Retry-After" not in response.headers


@pytest.mark.usefixtures("employee")
async def test_an_organisation_without_oracle_is_a_502_naming_the_cause(
    client: httpx.AsyncClient,
) -> None:
    other = await logged_in_user(client, await _new_org(), person_number="100002")
    response = await client.put(SYNC, headers=other.headers)
    assert response.status_code == 502, response.text
    assert problem_code(response) == "profile_sync_failed"
    assert response.json()["causes"] == ["integration_not_configured"]


async def _new_org() -> uuid.UUID:
    from tests.factories import create_org

    return await create_org()

"""GET /users/me, PUT /users/me/sync-profile and the user module's part of the pipeline."""

from __future__ import annotations

import uuid

import httpx
import pytest
from fastapi import FastAPI

from app.contracts.hr import LineManager, WorkerProfile, WorkerProfileSynced
from app.contracts.user import UserProfileSyncRequested, UserTaskSyncRequested, UserUpdated
from app.core.db import session_scope
from app.core.errors import UpstreamError
from app.events import publish
from app.events.testing import capture_events
from app.integrations.errors import AuthError, RateLimitedError, UnavailableError
from tests.factories import Account, logged_in_user, problem_code, settle

ME = "/api/v1/users/me"
SYNC = "/api/v1/users/me/sync-profile"

PROFILE = WorkerProfile(
    person_number="100002",
    first_name="Emma",
    last_name="Employee",
    display_name="Emma Employee",
    work_email="emma.employee@corp.example.com",
    job="Buyer",
    department="Procurement",
    business_unit="Demo BU",
)
MANAGERS = (
    LineManager(person_number="100001", display_name="Alex Admin", email="admin@example.com"),
    LineManager(person_number="100010", display_name="Dana Director"),
)


@pytest.fixture
def without_hr(app: FastAPI) -> None:
    """Unsubscribe the hr module's listener: these tests stand in for it (the real pipeline,
    against the sandbox, is tests/modules/hr's)."""
    app.state.emitter.remove_all_listeners(UserProfileSyncRequested)


async def test_me_has_the_profile_fields_empty_until_a_sync(
    client: httpx.AsyncClient, employee: Account
) -> None:
    response = await client.get(ME, headers=employee.headers)
    assert response.status_code == 200
    me = response.json()
    assert me["id"] == str(employee.user_id)
    assert (me["role"], me["user_type"]) == ("employee", "EMPLOYEE")
    assert me["organization"]["id"] == str(employee.organization_id)
    assert me["organization"]["name"].startswith("Org ")
    assert (me["oracle_username"], me["person_number"]) == ("EMMA.EMPLOYEE", "100002")
    assert me["line_managers"] == []
    assert me["job"] is None
    assert me["profile_synced_at"] is None


async def _synced(
    app: FastAPI, employee: Account, managers: tuple[LineManager, ...] = MANAGERS
) -> None:
    async with session_scope():
        await publish(
            WorkerProfileSynced(
                organization_id=employee.organization_id,
                user_id=employee.user_id,
                profile=PROFILE,
                line_managers=managers,
            )
        )
    # The inboxes sync durably after it; wait for them, so the next write does not race them.
    await settle(app)


async def test_a_synced_profile_is_stored_then_tasks_are_requested(
    app: FastAPI, client: httpx.AsyncClient, employee: Account
) -> None:
    with capture_events(app.state.emitter) as captured:
        await _synced(app, employee)
    me = (await client.get(ME, headers=employee.headers)).json()
    assert (me["job"], me["department"], me["business_unit"]) == (
        "Buyer",
        "Procurement",
        "Demo BU",
    )
    assert me["work_email"] == "emma.employee@corp.example.com"
    assert me["profile_synced_at"] is not None
    assert [m["display_name"] for m in me["line_managers"]] == ["Alex Admin", "Dana Director"]
    assert me["line_managers"][1] == {
        "person_number": "100010",
        "display_name": "Dana Director",
        "email": None,
    }
    names = captured.names()
    assert names == ["hr.profile.synced", "user.updated", "user.sync.task.notifications"]
    changed = captured.one(UserUpdated).changed_fields
    assert set(changed) == {"work_email", "job", "department", "business_unit", "line_managers"}
    tasks = captured.one(UserTaskSyncRequested)
    assert (tasks.user_id, tasks.requested_by, tasks.person_number) == (
        employee.user_id,
        "profile_sync",
        "100002",
    )
    # A second identical sync changes nothing but still asks for the tasks; new managers replace.
    with capture_events(app.state.emitter) as captured:
        await _synced(app, employee)
        await _synced(app, employee, managers=MANAGERS[:1])
    assert captured.names().count("user.updated") == 1
    me = (await client.get(ME, headers=employee.headers)).json()
    assert [m["person_number"] for m in me["line_managers"]] == ["100001"]


async def test_a_profile_for_another_tenant_is_ignored(
    client: httpx.AsyncClient, employee: Account
) -> None:
    async with session_scope():
        await publish(
            WorkerProfileSynced(
                organization_id=uuid.uuid4(), user_id=employee.user_id, profile=PROFILE
            )
        )
    assert (await client.get(ME, headers=employee.headers)).json()["job"] is None


async def test_sync_profile_is_for_employees_only(
    client: httpx.AsyncClient, org: uuid.UUID
) -> None:
    for user_type in ("CONTRACTOR", "EXTERNAL"):
        user = await logged_in_user(client, org, user_type=user_type)
        response = await client.put(SYNC, headers=user.headers)
        assert response.status_code == 400
        assert problem_code(response) == "user_not_employee"


@pytest.mark.usefixtures("without_hr")
async def test_sync_profile_without_an_hr_listener_simply_succeeds(
    app: FastAPI, client: httpx.AsyncClient, employee: Account
) -> None:
    with capture_events(app.state.emitter) as captured:
        response = await client.put(SYNC, headers=employee.headers, params={"first_time": "true"})
    assert response.status_code == 200
    assert response.json()["id"] == str(employee.user_id)
    request = captured.one(UserProfileSyncRequested)
    assert (request.user_id, request.first_time, request.requested_by) == (
        employee.user_id,
        True,
        "user",
    )
    assert (request.oracle_username, request.person_number) == ("EMMA.EMPLOYEE", "100002")
    bad = await client.put(SYNC, headers=employee.headers, params={"first_time": "maybe"})
    assert bad.status_code == 422


@pytest.mark.usefixtures("without_hr")
async def test_sync_profile_awaits_the_pipeline(
    app: FastAPI, client: httpx.AsyncClient, employee: Account
) -> None:
    async def fake_hr(event: UserProfileSyncRequested) -> None:
        await publish(
            WorkerProfileSynced(
                organization_id=event.organization_id,
                user_id=event.user_id,
                profile=PROFILE,
                line_managers=MANAGERS,
            )
        )

    app.state.emitter.on(UserProfileSyncRequested, fake_hr)
    response = await client.put(SYNC, headers=employee.headers)
    assert response.status_code == 200
    me = response.json()
    assert me["job"] == "Buyer"
    assert len(me["line_managers"]) == 2


@pytest.mark.usefixtures("without_hr")
async def test_a_failing_pipeline_is_a_502_problem_and_rolls_back(
    app: FastAPI, client: httpx.AsyncClient, employee: Account
) -> None:
    async def oracle_down(event: UserProfileSyncRequested) -> None:
        await publish(
            WorkerProfileSynced(
                organization_id=event.organization_id, user_id=event.user_id, profile=PROFILE
            )
        )
        raise UpstreamError("HCM answered 503", code="oracle_unavailable")

    app.state.emitter.on(UserProfileSyncRequested, oracle_down)
    response = await client.put(SYNC, headers=employee.headers)
    assert response.status_code == 502
    assert problem_code(response) == "profile_sync_failed"
    assert response.json()["causes"] == ["oracle_unavailable"]
    assert "HCM answered" not in response.text
    assert (await client.get(ME, headers=employee.headers)).json()["job"] is None


@pytest.mark.parametrize(
    ("failures", "status", "retry_after", "causes"),
    [
        (
            [UnavailableError("HCM answered 503", integration="oracle_fusion", retry_after=30)],
            503,
            "30",
            ["upstream_unavailable"],
        ),
        (
            [RateLimitedError("429", integration="oracle_fusion", retry_after=0.2)],
            503,
            "1",
            ["upstream_rate_limited"],
        ),
        (
            [AuthError("401 for integration", integration="oracle_fusion")],
            502,
            None,
            ["upstream_auth"],
        ),
        (
            [UnavailableError("down", integration="oracle_fusion"), RuntimeError("bug")],
            502,
            None,
            ["internal_error", "upstream_unavailable"],
        ),
    ],
)
@pytest.mark.usefixtures("without_hr")
async def test_an_oracle_failure_names_its_cause_and_says_when_to_come_back(
    app: FastAPI,
    client: httpx.AsyncClient,
    employee: Account,
    failures: list[Exception],
    status: int,
    retry_after: str | None,
    causes: list[str],
) -> None:
    for failure in failures:

        async def hr_listener(
            event: UserProfileSyncRequested, failure: Exception = failure
        ) -> None:
            raise failure

        app.state.emitter.on(UserProfileSyncRequested, hr_listener)
    response = await client.put(SYNC, headers=employee.headers)
    assert response.status_code == status, response.text
    assert problem_code(response) == "profile_sync_failed"
    assert response.json()["causes"] == causes
    assert response.headers.get("Retry-After") == retry_after
    assert "HCM answered" not in response.text  # the system's own words stay in the log

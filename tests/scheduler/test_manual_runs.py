"""Runs by hand: POST /admin/jobs/{id}/run fans out one durable delivery per active user."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from app.contracts.user import UserTaskSyncRequested
from app.core.db import session_scope
from app.events.outbox.models import OutboxDelivery
from app.modules.user.provisioning import DEMO_PASSWORD, DEMO_USERS
from app.runtime import seed_demo_data
from app.scheduler import service
from tests.factories import Account, create_user, log_in, logged_in_user, problem_code, settle
from tests.scheduler.conftest import TASK_SYNC_LISTENER, TaskSyncs


async def finish_runs(app: FastAPI) -> None:
    """Let the relays drain, then let the scheduler finish the runs whose work is done."""
    await settle(app)
    await service.reconcile()


async def test_a_manual_run_sweeps_the_demo_organisation(
    app: FastAPI, client: httpx.AsyncClient, task_syncs: TaskSyncs
) -> None:
    await seed_demo_data()
    demo_admin = next(user for user in DEMO_USERS if user.role == "admin")
    async with session_scope() as session:
        from app.modules.user.models import User

        users = {
            row.email: row.id
            for row in (await session.scalars(select(User))).all()
            if row.is_active and not row.is_deleted
        }
    admin = await log_in(
        client,
        Account(users[demo_admin.email], uuid.uuid4(), demo_admin.email, DEMO_PASSWORD),
    )

    response = await client.post("/api/v1/admin/jobs/task_sweep/run", headers=admin.headers)
    assert response.status_code == 202, response.text
    run_id = response.json()["run_id"]
    await finish_runs(app)

    # Every active user of the demo got exactly one delivery, and nobody else.
    assert sorted(task_syncs.seen) == sorted(users.values())
    async with session_scope() as session:
        deliveries = await session.scalar(
            select(func.count())
            .select_from(OutboxDelivery)
            .where(
                OutboxDelivery.listener_id == TASK_SYNC_LISTENER, OutboxDelivery.status == "done"
            )
        )
    assert deliveries == len(users)

    runs = (await client.get("/api/v1/admin/jobs/task_sweep/runs", headers=admin.headers)).json()
    assert runs["total"] == 1
    run = runs["items"][0]
    assert run["id"] == run_id
    assert (run["status"], run["users"], run["done"], run["failures"], run["skipped"]) == (
        "succeeded",
        len(users),
        len(users),
        0,
        0,
    )
    assert run["triggered_by"] == "admin"
    assert run["finished_at"] >= run["started_at"]

    jobs = (await client.get("/api/v1/admin/jobs", headers=admin.headers)).json()["items"]
    sweep = next(job for job in jobs if job["id"] == "task_sweep")
    assert sweep["cron"] == "*/5 * * * *"
    assert sweep["cron_setting"] == "SCHEDULER_TASK_SWEEP_CRON"
    assert sweep["next_run_at"] is not None
    assert sweep["last_run"]["id"] == run_id
    assert 0 <= sweep["freshness_seconds"] < 60
    profile = next(job for job in jobs if job["id"] == "profile_sync")
    assert profile["cron"] == "0 6 * * fri"
    assert profile["last_run"] is None
    assert profile["freshness_seconds"] is None


async def test_the_profile_sync_asks_for_active_employees_only(
    app: FastAPI, client: httpx.AsyncClient, admin: Account, org: uuid.UUID
) -> None:
    employee = await create_user(org)
    await create_user(org, user_type="CONTRACTOR")
    inactive = await create_user(org)
    await client.patch(
        f"/api/v1/users/{inactive.user_id}", headers=admin.headers, json={"is_active": False}
    )
    seen: list[uuid.UUID] = []
    from app.contracts.user import UserProfileSyncRequested

    app.state.emitter.on(UserProfileSyncRequested, lambda event: seen.append(event.user_id))
    response = await client.post("/api/v1/admin/jobs/profile_sync/run", headers=admin.headers)
    assert response.status_code == 202
    await finish_runs(app)
    assert sorted(seen) == sorted([admin.user_id, employee.user_id])


async def test_failed_users_make_a_partial_run_and_keep_their_freshness(
    app: FastAPI, client: httpx.AsyncClient, admin: Account, org: uuid.UUID, task_syncs: TaskSyncs
) -> None:
    failing = await create_user(org)
    await create_user(org)
    task_syncs.failing.add(failing.user_id)
    response = await client.post("/api/v1/admin/jobs/task_sweep/run", headers=admin.headers)
    await finish_runs(app)
    runs = (await client.get("/api/v1/admin/jobs/task_sweep/runs", headers=admin.headers)).json()
    run = runs["items"][0]
    assert run["id"] == response.json()["run_id"]
    assert (run["status"], run["users"], run["failures"]) == ("partial", 3, 1)

    # The failing user's last success is never: freshness counts from when they were first seen.
    async with session_scope() as session:
        from app.scheduler.models import JobRun

        first = (await session.scalars(select(JobRun))).one()
    later = first.started_at + timedelta(hours=1)
    freshness = await service.freshness_by_organization(now=later)
    assert freshness == {org: 3600.0}

    task_syncs.failing = {admin.user_id, failing.user_id, *task_syncs.seen}
    await client.post("/api/v1/admin/jobs/task_sweep/run", headers=admin.headers)
    await finish_runs(app)
    runs = (await client.get("/api/v1/admin/jobs/task_sweep/runs", headers=admin.headers)).json()
    assert [r["status"] for r in runs["items"]] == ["failed", "partial"]


async def test_a_job_that_runs_once_finishes_with_its_transaction(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    response = await client.post("/api/v1/admin/jobs/notification.prune/run", headers=admin.headers)
    assert response.status_code == 202
    await finish_runs(app)
    runs = (
        await client.get("/api/v1/admin/jobs/notification.prune/runs", headers=admin.headers)
    ).json()
    assert [(r["status"], r["users"]) for r in runs["items"]] == [("succeeded", 0)]
    jobs = (await client.get("/api/v1/admin/jobs", headers=admin.headers)).json()["items"]
    prune = next(job for job in jobs if job["id"] == "notification.prune")
    assert (prune["cron_setting"], prune["freshness_seconds"]) == ("NOTIFICATIONS_PRUNE_CRON", None)


async def test_bad_requests(
    app: FastAPI, client: httpx.AsyncClient, admin: Account, org: uuid.UUID
) -> None:
    response = await client.post("/api/v1/admin/jobs/no_such_job/run", headers=admin.headers)
    assert response.status_code == 404
    assert problem_code(response) == "job_not_found"
    response = await client.get("/api/v1/admin/jobs/no_such_job/runs", headers=admin.headers)
    assert response.status_code == 404
    response = await client.get("/api/v1/admin/jobs/task_sweep/runs?limit=0", headers=admin.headers)
    assert response.status_code == 422

    user = await logged_in_user(client, org)
    for method, path in (
        ("POST", "/api/v1/admin/jobs/task_sweep/run"),
        ("GET", "/api/v1/admin/jobs"),
        ("GET", "/api/v1/admin/jobs/task_sweep/runs"),
    ):
        response = await client.request(method, path, headers=user.headers)
        assert response.status_code == 403, path
        assert problem_code(response) == "admin_required"
    response = await client.get("/api/v1/admin/jobs")
    assert response.status_code == 401


async def test_a_run_in_progress_answers_409(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    first = await client.post("/api/v1/admin/jobs/task_sweep/run", headers=admin.headers)
    assert first.status_code == 202
    second = await client.post("/api/v1/admin/jobs/task_sweep/run", headers=admin.headers)
    assert second.status_code == 409
    assert problem_code(second) == "job_running"
    # Another job is not held back, and once the run is finished the job runs again.
    other = await client.post("/api/v1/admin/jobs/profile_sync/run", headers=admin.headers)
    assert other.status_code == 202
    await finish_runs(app)
    again = await client.post("/api/v1/admin/jobs/task_sweep/run", headers=admin.headers)
    assert again.status_code == 202


async def test_runs_are_the_organisations_own(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    from tests.factories import create_org

    other_admin = await logged_in_user(client, await create_org(), role="admin")
    await client.post("/api/v1/admin/jobs/task_sweep/run", headers=other_admin.headers)
    runs = (await client.get("/api/v1/admin/jobs/task_sweep/runs", headers=admin.headers)).json()
    assert runs == {"items": [], "total": 0, "limit": 50, "offset": 0}


@pytest.mark.parametrize("event_type", [UserTaskSyncRequested])
def test_a_run_stores_each_users_event_once(event_type: type[UserTaskSyncRequested]) -> None:
    run_id, user_id = uuid.uuid4(), uuid.uuid4()
    event = event_type(organization_id=uuid.uuid4(), user_id=user_id, email="a@example.com")
    assert event.dedupe_key() is None  # a user's own refresh is never deduplicated
    scheduled = event.model_copy(update={"run_id": run_id})
    assert scheduled.dedupe_key() == f"{run_id}:{user_id}"

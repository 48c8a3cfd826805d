"""Admin resyncs: 202 at once, then (durably) one user.syncProfile per active EMPLOYEE, by page."""

from __future__ import annotations

import uuid

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from app.contracts.user import UserProfileSyncRequested
from app.core.db import session_scope
from app.core.settings import get_settings
from app.events.outbox.models import OutboxDelivery
from app.events.testing import capture_events
from tests.factories import Account, create_org, create_user, problem_code, settle


async def test_resync_one_employee(app: FastAPI, client: httpx.AsyncClient, admin: Account) -> None:
    target = await create_user(admin.organization_id, person_number="100007")
    with capture_events(app.state.emitter) as captured:
        response = await client.post(
            f"/api/v1/admin/users/{target.user_id}/resync", headers=admin.headers
        )
        assert response.status_code == 202
        assert response.json() == {
            "status": "accepted",
            "scope": "user",
            "user_id": str(target.user_id),
        }
        await settle(app)
    request = captured.one(UserProfileSyncRequested)
    assert (request.user_id, request.person_number, request.requested_by) == (
        target.user_id,
        "100007",
        "admin",
    )


async def test_resync_refuses_non_employees_and_inactive_users(
    client: httpx.AsyncClient, admin: Account, org: uuid.UUID
) -> None:
    contractor = await create_user(org, user_type="CONTRACTOR")
    response = await client.post(
        f"/api/v1/admin/users/{contractor.user_id}/resync", headers=admin.headers
    )
    assert response.status_code == 400
    assert problem_code(response) == "user_not_employee"
    inactive = await create_user(org)
    await client.patch(
        f"/api/v1/users/{inactive.user_id}", headers=admin.headers, json={"is_active": False}
    )
    response = await client.post(
        f"/api/v1/admin/users/{inactive.user_id}/resync", headers=admin.headers
    )
    assert response.status_code == 409
    assert problem_code(response) == "user_inactive"


async def test_resync_the_organisation_page_by_page(
    app: FastAPI,
    client: httpx.AsyncClient,
    admin: Account,
    org: uuid.UUID,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(get_settings().users, "resync_page_size", 2)
    employees = {admin.user_id}
    for _ in range(4):
        employees.add((await create_user(org)).user_id)
    await create_user(org, user_type="CONTRACTOR")
    await create_user(org, user_type="EXTERNAL")
    inactive = await create_user(org)
    await client.patch(
        f"/api/v1/users/{inactive.user_id}", headers=admin.headers, json={"is_active": False}
    )
    deleted = await create_user(org)
    await client.delete(f"/api/v1/users/{deleted.user_id}", headers=admin.headers)
    await create_user(await create_org())  # another tenant is never touched

    with capture_events(app.state.emitter) as captured:
        response = await client.post("/api/v1/admin/organization/resync", headers=admin.headers)
        assert response.status_code == 202
        assert response.json()["scope"] == "organization"
        await settle(app)
    async with session_scope() as session:
        deliveries = (await session.scalars(select(OutboxDelivery))).all()
    fan_out = [d.status for d in deliveries if d.listener_id == "user.resync.fan_out"]
    assert fan_out == ["done"]
    # Each request is a durable delivery of its own (the hr module reads HCM in the relays).
    assert len([d for d in deliveries if d.event_name == "user.syncProfile"]) == len(employees)
    requests = captured.of(UserProfileSyncRequested)
    assert sorted(r.user_id for r in requests) == sorted(employees)
    assert {r.organization_id for r in requests} == {org}
    assert {r.requested_by for r in requests} == {"admin"}


async def test_one_failing_sync_does_not_stop_the_others(
    app: FastAPI, client: httpx.AsyncClient, admin: Account, org: uuid.UUID
) -> None:
    for _ in range(3):
        await create_user(org)
    seen: list[uuid.UUID] = []

    async def flaky_hr(event: UserProfileSyncRequested) -> None:
        seen.append(event.user_id)
        if len(seen) == 1:
            raise RuntimeError("Oracle timed out")

    app.state.emitter.on(UserProfileSyncRequested, flaky_hr)
    response = await client.post("/api/v1/admin/organization/resync", headers=admin.headers)
    assert response.status_code == 202
    await settle(app)
    assert len(seen) == 4

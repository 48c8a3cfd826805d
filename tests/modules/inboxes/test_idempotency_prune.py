"""Each inbox's prune job forgets Idempotency-Key answers past their time to live, and no other."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError
from sqlalchemy import select

from app.core.db import session_scope, utcnow
from app.core.inbox.settings import InboxSettings
from app.modules.procurement.models import ProcurementIdempotencyKey
from app.scheduler import service
from tests.factories import Account, create_org, settle
from tests.inbox_support import RunningSandbox, received_actions, request_sync, tasks

JOB = "procurement.idempotency.prune"


async def test_the_prune_job_forgets_keys_older_than_the_ttl_and_keeps_a_days_worth(
    app: FastAPI,
    client: httpx.AsyncClient,
    admin: Account,
    employee: Account,
    connected: RunningSandbox,
) -> None:
    await request_sync(app, employee)
    task = (await tasks(client, "procurement", employee))["items"][0]
    url = f"/api/v1/procurement/tasks/{task['id']}/actions"
    headers = {**employee.headers, "Idempotency-Key": "fresh"}
    first = await client.post(url, json={"action": "APPROVE"}, headers=headers)
    assert first.status_code == 200, first.text

    elsewhere = await create_org()
    now = utcnow()
    async with session_scope() as session:
        for organization_id, key, age in (
            (employee.organization_id, "expired", timedelta(hours=25)),
            (employee.organization_id, "23-hours-old", timedelta(hours=23)),
            (elsewhere, "another-organisation", timedelta(hours=25)),
        ):
            session.add(
                ProcurementIdempotencyKey(
                    organization_id=organization_id,
                    user_id=employee.user_id,
                    key=key,
                    request_hash="0" * 64,
                    status_code=200,
                    response={},
                    created_at=now - age,
                )
            )

    jobs = (await client.get("/api/v1/admin/jobs", headers=admin.headers)).json()["items"]
    job = next(j for j in jobs if j["id"] == JOB)
    assert job["cron_setting"] == "INBOX_PRUNE_CRON"
    response = await client.post(f"/api/v1/admin/jobs/{JOB}/run", headers=admin.headers)
    assert response.status_code == 202, response.text
    await settle(app)
    await service.reconcile()
    runs = (await client.get(f"/api/v1/admin/jobs/{JOB}/runs", headers=admin.headers)).json()
    assert [r["status"] for r in runs["items"]] == ["succeeded"]

    async with session_scope() as session:
        kept = set((await session.scalars(select(ProcurementIdempotencyKey.key))).all())
    # The run is the admin's organisation's: another organisation's keys wait for its own run.
    assert kept == {"fresh", "23-hours-old", "another-organisation"}
    again = await client.post(url, json={"action": "APPROVE"}, headers=headers)
    assert (again.status_code, again.json()) == (200, first.json())
    assert len(await received_actions(connected, "oracle", task=task["task_id"])) == 1


def test_keys_are_kept_at_least_a_day() -> None:
    with pytest.raises(ValidationError):
        InboxSettings(idempotency_ttl_hours=23)
    assert InboxSettings().idempotency_ttl_hours == 24

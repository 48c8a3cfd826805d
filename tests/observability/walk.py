"""A walk through the product that touches every series: a sweep run by hand syncs a user's
inboxes at the sandbox, the new tasks are pushed to the user's phone, and the user reads them."""

from __future__ import annotations

import uuid

import httpx
from fastapi import FastAPI

from app.core.db import utcnow
from app.events.outbox.relay import Relay
from app.scheduler import service
from app.scheduler.catalog import registered_jobs
from app.scheduler.engine import Scheduler
from tests.factories import Account, settle

DEVICE_TOKEN = f"walk-device-{uuid.uuid4().hex}"


async def walk(app: FastAPI, client: httpx.AsyncClient, employee: Account) -> None:
    """Run the walk: a device, a sweep tick, the user's reads."""
    response = await client.post(
        "/api/v1/devices",
        headers=employee.headers,
        json={"token": DEVICE_TOKEN, "platform": "android"},
    )
    assert response.status_code == 201, response.text
    scheduler = Scheduler(registered_jobs(), app.state.settings.scheduler)
    assert await scheduler.fire("task_sweep", utcnow())
    await settle(app)
    await service.reconcile()
    for module in ("procurement", "hr", "leasing"):
        page = await client.get(f"/api/v1/{module}/tasks", headers=employee.headers)
        assert page.status_code == 200, page.text
    missing = await client.post(
        f"/api/v1/notifications/{uuid.uuid4()}/read", headers=employee.headers
    )
    assert missing.status_code == 404
    await client.get("/api/v1/notifications/unread-count", headers=employee.headers)
    # What the worker and scheduler processes refresh on their own clocks.
    await Relay(app.state.emitter, app.state.database).refresh_gauges()
    await scheduler.refresh_freshness()

"""Push preferences and quiet hours: GET/PUT /notifications/preferences, and what they hold."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from app.core.db import session_scope
from app.events.outbox.models import OutboxDelivery
from tests.factories import Account, create_user, log_in, problem_code
from tests.integrations.conftest import RunningSandbox
from tests.modules.notification.conftest import Time, deliver, device_token, pushes, receive

WINDOW = 30
DEFAULTS = {"push": {"procurement": True, "hr": True, "leasing": True}, "quiet_hours": None}


async def test_preferences_default_to_push_on_and_no_quiet_hours_and_can_be_replaced(
    client: httpx.AsyncClient, employee: Account
) -> None:
    path = "/api/v1/notifications/preferences"
    assert (await client.get(path, headers=employee.headers)).json() == DEFAULTS
    wanted = {
        "push": {"procurement": False, "hr": True, "leasing": True},
        "quiet_hours": {"start": "22:00", "end": "07:00", "time_zone": "Europe/Paris"},
    }
    response = await client.put(path, headers=employee.headers, json=wanted)
    assert response.status_code == 200, response.text
    assert response.json() == wanted
    assert (await client.get(path, headers=employee.headers)).json() == wanted
    cleared = await client.put(path, headers=employee.headers, json={"quiet_hours": None})
    assert cleared.json() == DEFAULTS


@pytest.mark.parametrize(
    ("quiet_hours", "loc"),
    [
        pytest.param(
            {"start": "22:00", "end": "07:00", "time_zone": "Mars/Olympus"},
            ["body", "quiet_hours", "time_zone"],
            id="unknown-zone",
        ),
        pytest.param(
            {"start": "22:00", "end": "07:00", "time_zone": "America"},
            ["body", "quiet_hours", "time_zone"],
            id="zone-directory",
        ),
        pytest.param(
            {"start": "24:00", "end": "07:00", "time_zone": "UTC"},
            ["body", "quiet_hours", "start"],
            id="hour-24",
        ),
        pytest.param(
            {"start": "22:00", "end": "7:00", "time_zone": "UTC"},
            ["body", "quiet_hours", "end"],
            id="one-digit-hour",
        ),
        pytest.param(
            {"start": "22:00", "end": "07:60", "time_zone": "UTC"},
            ["body", "quiet_hours", "end"],
            id="minute-60",
        ),
        pytest.param(
            {"start": "22:00", "end": "22:00", "time_zone": "UTC"},
            ["body", "quiet_hours"],
            id="empty-window",
        ),
        pytest.param(
            {"start": "22:00", "end": "07:00"}, ["body", "quiet_hours", "time_zone"], id="no-zone"
        ),
        pytest.param(
            {"start": "22:00", "end": "07:00", "time_zone": "UTC", "days": "weekdays"},
            ["body", "quiet_hours", "days"],
            id="unknown-field",
        ),
    ],
)
async def test_bad_quiet_hours_are_refused_with_422_naming_the_field(
    client: httpx.AsyncClient, employee: Account, quiet_hours: dict[str, str], loc: list[str]
) -> None:
    response = await client.put(
        "/api/v1/notifications/preferences",
        headers=employee.headers,
        json={"quiet_hours": quiet_hours},
    )
    assert response.status_code == 422
    assert problem_code(response) == "validation_error"
    assert loc in [e["loc"] for e in response.json()["errors"]], response.json()


async def test_bad_push_preferences_are_refused(
    client: httpx.AsyncClient, employee: Account
) -> None:
    for body in ({"push": {"payroll": True}}, {"push": {"hr": "sometimes"}}, {"mute": True}):
        response = await client.put(
            "/api/v1/notifications/preferences", headers=employee.headers, json=body
        )
        assert response.status_code == 422, body


async def test_push_off_for_a_module_stores_the_notification_but_pushes_nothing_for_it(
    app: FastAPI, client: httpx.AsyncClient, org: uuid.UUID, fcm: RunningSandbox, now: Time
) -> None:
    token = device_token(1)
    user = await log_in(
        client, await create_user(org), device={"token": token, "platform": "android"}
    )
    await client.put(
        "/api/v1/notifications/preferences",
        headers=user.headers,
        json={"push": {"procurement": False}},
    )
    await receive(user, ("procurement", "P1"), ("hr", "H1"))
    await deliver(app, now)
    now.advance(WINDOW)
    await deliver(app, now)
    (push,) = await pushes(fcm, token)
    assert (push["title"], push["data"]["task_id"]) == ("Hr task H1", "H1")
    count = await client.get("/api/v1/notifications/unread-count", headers=user.headers)
    assert count.json() == {"count": 2}


async def _push_delivery() -> OutboxDelivery:
    async with session_scope() as session:
        query = select(OutboxDelivery).where(OutboxDelivery.listener_id == "notification.push")
        return (await session.scalars(query)).one()


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


async def test_quiet_hours_hold_pushes_and_release_one_summary_when_they_end(
    app: FastAPI,
    client: httpx.AsyncClient,
    org: uuid.UUID,
    fcm: RunningSandbox,
    now: Time,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    token = device_token(1)
    user = await log_in(client, await create_user(org), device={"token": token, "platform": "ios"})
    await client.put(
        "/api/v1/notifications/preferences",
        headers=user.headers,
        json={"quiet_hours": {"start": "22:00", "end": "07:00", "time_zone": "Asia/Tokyo"}},
    )
    now.set(datetime(2026, 12, 1, 14, 0, tzinfo=UTC))  # 23:00 in Tokyo
    await receive(user, ("procurement", "1"))
    await deliver(app, now)
    now.advance(3600)  # 00:00 in Tokyo: a second task, the list stays current
    await receive(user, ("leasing", "2"))
    await deliver(app, now)
    now.advance(WINDOW)
    await deliver(app, now)
    assert await pushes(fcm, token) == []
    count = await client.get("/api/v1/notifications/unread-count", headers=user.headers)
    assert count.json() == {"count": 2}

    # One durable delivery, written due when the window opens: nothing ran it before.
    release = datetime(2026, 12, 1, 22, 0, tzinfo=UTC)  # 07:00 in Tokyo
    waiting = await _push_delivery()
    assert (waiting.status, waiting.attempts, waiting.available_at) == ("pending", 0, release)

    now.set(datetime(2026, 12, 1, 21, 59, tzinfo=UTC))  # 06:59 in Tokyo: still quiet
    await deliver(app, now)
    assert await pushes(fcm, token) == []
    now.set(datetime(2026, 12, 1, 22, 0, 1, tzinfo=UTC))  # 07:00 in Tokyo
    await deliver(app, now)
    (push,) = await pushes(fcm, token)
    assert (push["title"], push["body"]) == ("2 new approvals", "1 procurement, 1 leasing")
    sent = await _push_delivery()
    assert (sent.status, sent.attempts, sent.errors) == ("done", 1, [])
    assert _warnings(caplog) == []


async def test_quiet_hours_that_begin_while_a_push_waits_defer_it_without_spending_attempts(
    app: FastAPI,
    client: httpx.AsyncClient,
    org: uuid.UUID,
    fcm: RunningSandbox,
    now: Time,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    token = device_token(1)
    user = await log_in(client, await create_user(org), device={"token": token, "platform": "ios"})
    now.set(datetime(2026, 12, 1, 12, 59, 50, tzinfo=UTC))  # 21:59:50 in Tokyo
    await receive(user, ("hr", "H1"))
    await deliver(app, now)
    await client.put(
        "/api/v1/notifications/preferences",
        headers=user.headers,
        json={"quiet_hours": {"start": "22:00", "end": "07:00", "time_zone": "Asia/Tokyo"}},
    )
    now.advance(WINDOW)  # the window closed at 22:00:20, inside the new quiet hours
    await deliver(app, now)
    assert await pushes(fcm, token) == []
    deferred = await _push_delivery()
    release = datetime(2026, 12, 1, 22, 0, tzinfo=UTC)
    assert (deferred.status, deferred.attempts, deferred.errors) == ("pending", 0, [])
    assert deferred.available_at == release
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert any("deferred until" in message for message in infos)

    now.set(release)
    await deliver(app, now)
    (push,) = await pushes(fcm, token)
    assert push["data"]["task_id"] == "H1"
    assert (await _push_delivery()).attempts == 1
    assert _warnings(caplog) == []

"""The overview's pushes of the last hour, counted by the notification module for the org."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import httpx
from fastapi import FastAPI

from app.core.db import session_scope
from app.core.settings import get_settings
from app.modules.notification import service as notifications
from tests.console.support import browser, console_login
from tests.factories import Account, create_org, create_user, log_in
from tests.modules.notification.conftest import (
    Time,
    deliver,
    device_token,
    fcm,
    now,
    receive,
)

__all__ = ["fcm", "now"]


async def _with_device(client: httpx.AsyncClient, organization: uuid.UUID) -> Account:
    return await log_in(
        client,
        await create_user(organization),
        device={"token": device_token(1), "platform": "android"},
    )


async def _push(app: FastAPI, now: Time, user: Account, *task_ids: str) -> None:
    """Receive tasks for ``user`` and send their (summary) push."""
    await receive(user, *(("procurement", task_id) for task_id in task_ids))
    await deliver(app, now)
    now.advance(get_settings().notifications.summary_window_seconds + 1)
    await deliver(app, now)


def _figure(html: str, name: str) -> int:
    match = re.search(rf'data-figure="{name}">(\d+)<', html)
    assert match is not None, html
    return int(match.group(1))


async def test_the_overview_counts_the_organisations_pushes_of_the_last_hour(
    app: FastAPI, client: httpx.AsyncClient, admin: Account, now: Time
) -> None:
    user = await _with_device(client, admin.organization_id)
    await _push(app, now, user, "300002", "300003")  # one summary of two
    other = await _with_device(client, await create_org())
    await _push(app, now, other, "300004")  # another organisation's

    async with browser(app) as console:
        await console_login(console, admin)
        page = await console.get("/console/overview/live", headers={"X-Console-Fragment": "1"})
        assert page.status_code == 200
        assert _figure(page.text, "pushes") == 1
        assert _figure(page.text, "notifications") == 2
        assert _figure(page.text, "delivered") == 1

    # The window is the last hour: a push sent before it is not counted.
    async with session_scope() as session:
        later = await notifications.push_totals(
            session, organization_id=admin.organization_id, since=now() + timedelta(seconds=1)
        )
    assert (later.pushes, later.notifications, later.delivered) == (0, 0, 0)

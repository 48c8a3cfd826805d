"""Fixtures: the sandbox's fake FCM on a real loopback port, a movable clock, and helpers that
publish the inbox's events and run the durable deliveries as the relay would.

The in-process relay is off here: tests run the deliveries at the moment they choose, on the
module's clock, so summary windows and quiet hours are checked without waiting.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.core.db import session_scope, utcnow
from app.events import publish
from app.events.testing import run_pending
from app.modules.notification.clock import use_clock
from app.modules.notification.listeners import CLOSED, RECEIVED
from tests.factories import Account, admin, employee, org
from tests.integrations.conftest import (
    RunningSandbox,
    clock,
    demo_key,
    loopback,
    sandbox,
    sandbox_settings,
)

__all__ = [
    "admin",
    "clock",
    "demo_key",
    "employee",
    "loopback",
    "org",
    "sandbox",
    "sandbox_settings",
]

SOURCES = {"procurement": "oracle_fusion", "hr": "oracle_fusion", "leasing": "yardi"}


class Time:
    """The wall clock plus what the test moved it by: the module and the relay both read it,
    so deliveries stored a moment ago are due, and a window closes when the test says."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return utcnow() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)

    def set(self, instant: datetime) -> None:
        """Move the clock so that it reads ``instant`` now."""
        self.offset = instant - utcnow()


@pytest.fixture(autouse=True)
def fcm(monkeypatch: pytest.MonkeyPatch, sandbox: RunningSandbox) -> RunningSandbox:
    """firebase-admin pointed at the sandbox's fake FCM; deliveries run only when asked."""
    monkeypatch.setenv("FCM_PROVIDER", "sandbox")
    monkeypatch.setenv("FCM_SANDBOX_URL", f"{sandbox.url}/fcm")
    monkeypatch.setenv("EVENTS_RELAY_ENABLED", "false")
    return sandbox


@pytest.fixture
def now() -> Iterator[Time]:
    time = Time()
    with use_clock(time):
        yield time


async def deliver(app: FastAPI, now: Time) -> int:
    """Run every durable delivery that is due at ``now``, as the relay would; return how many."""
    emitter = app.state.emitter
    total = 0
    while True:
        ran = await run_pending(emitter, clock=now)
        await emitter.drain(timeout=10)
        total += ran
        if not ran:
            return total


async def receive(
    account: Account, *tasks: tuple[str, str], sync_id: uuid.UUID | None = None, **fields: Any
) -> None:
    """Publish ``<module>.task.received`` for each ``(module, task_id)``, in one transaction."""
    async with session_scope():
        for module, task_id in tasks:
            await publish(
                RECEIVED[module](
                    organization_id=account.organization_id,
                    user_id=account.user_id,
                    task_id=task_id,
                    source=SOURCES[module],
                    title=fields.get("title", f"{module.title()} task {task_id}"),
                    summary=fields.get("summary"),
                    sync_id=sync_id,
                )
            )


async def close(account: Account, module: str, task_id: str) -> None:
    """Publish ``<module>.task.closed``."""
    async with session_scope():
        await publish(
            CLOSED[module](
                organization_id=account.organization_id,
                user_id=account.user_id,
                task_id=task_id,
                source=SOURCES[module],
                reason="decided_elsewhere",
            )
        )


async def pushes(sandbox: RunningSandbox, token: str | None = None) -> list[dict[str, Any]]:
    """What the fake FCM accepted, newest first, read over HTTP like the demo does."""
    params = {"token": token} if token else {}
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{sandbox.url}/fcm/messages", params=params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def topics(sandbox: RunningSandbox, token: str) -> list[str]:
    """The topics the fake FCM has ``token`` subscribed to."""
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{sandbox.url}/fcm/subscriptions", params={"token": token})
    assert response.status_code == 200, response.text
    return [item["topic"] for item in response.json()["items"]]


def device_token(n: int) -> str:
    return f"device-token-{n:04d}-{uuid.uuid4().hex}"

"""Fixtures of the scheduler's tests: a durable stand-in for the inbox's task sync listeners."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI

from app.contracts.user import UserTaskSyncRequested
from app.core.settings import Settings, get_settings, reset_settings
from app.events import DoNotRetry, listener
from tests.factories import admin, employee, org
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
    "settings",
    "task_syncs",
]

TASK_SYNC_LISTENER = "tests.task_sync"


class TaskSyncs:
    """The user ids a durable task-sync listener was delivered, and users to fail."""

    def __init__(self) -> None:
        self.seen: list[uuid.UUID] = []
        self.failing: set[uuid.UUID] = set()


@pytest.fixture
def settings(
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    sandbox: RunningSandbox,
    demo_key: tuple[Path, str],
) -> Iterator[Settings]:
    """The demo organisation's integrations point at a sandbox that answers: a sweep's users
    really sync their inboxes there."""
    monkeypatch.setenv("SANDBOX_PUBLIC_URL", sandbox.url)
    monkeypatch.setenv("SANDBOX_JWT_KEY_FILE", str(demo_key[0]))
    monkeypatch.setenv("NOTIFICATIONS_SUMMARY_WINDOW_SECONDS", "0")
    reset_settings()
    yield get_settings()
    reset_settings()


@pytest.fixture
def task_syncs(app: FastAPI) -> Iterator[TaskSyncs]:
    """Subscribe a durable listener to ``user.sync.task.notifications`` (the inbox's shape)."""
    syncs = TaskSyncs()

    @listener(UserTaskSyncRequested, delivery="durable", listener_id=TASK_SYNC_LISTENER)
    async def when_task_sync_requested_record(event: UserTaskSyncRequested) -> None:
        syncs.seen.append(event.user_id)
        if event.user_id in syncs.failing:
            raise DoNotRetry("the source refused this user")

    subscriptions = app.state.emitter.register(when_task_sync_requested_record, module="tests")
    yield syncs
    for subscription in subscriptions:
        subscription.off()


@pytest.fixture
def no_relay(monkeypatch: pytest.MonkeyPatch) -> None:
    """No in-process relay: the test decides when deliveries run (``settle``)."""
    monkeypatch.setenv("EVENTS_RELAY_ENABLED", "false")

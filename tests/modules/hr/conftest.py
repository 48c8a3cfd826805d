"""The hr tests run the app against the sandbox over real HTTP (the integrations' fixtures)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.settings import Settings, get_settings, reset_settings
from tests.factories import admin, connect_to_sandbox, employee, org
from tests.integrations.conftest import (
    FakeClock,
    RunningSandbox,
    clock,
    demo_key,
    loopback,
    sandbox,
    sandbox_settings,
)

__all__ = [
    "FakeClock",
    "admin",
    "clock",
    "demo_key",
    "employee",
    "loopback",
    "org",
    "sandbox",
    "sandbox_settings",
]


@pytest.fixture
def settings(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """The test settings, with one attempt per call: an injected fault reaches the caller at
    once instead of after real retry waits. A profile sync asks the inboxes for the user's
    tasks, and the pushes of the tasks they find go out at once, so ``settle`` can finish."""
    monkeypatch.setenv("HTTP_RETRY_ATTEMPTS", "1")
    monkeypatch.setenv("NOTIFICATIONS_SUMMARY_WINDOW_SECONDS", "0")
    reset_settings()
    yield get_settings()
    reset_settings()


@pytest.fixture
async def connected(org: uuid.UUID, sandbox: RunningSandbox, demo_key: tuple[Path, str]) -> None:
    """``org``'s Oracle Fusion and Yardi connections point at the sandbox."""
    await connect_to_sandbox(org, sandbox.url, jwt_private_key=demo_key[1])

"""Fixtures of the observability tests: the inbox's sandbox and organisation, with push on."""

from __future__ import annotations

import pytest

from tests.inbox_support import *  # noqa: F403
from tests.inbox_support import RunningSandbox


@pytest.fixture(autouse=True)
def fcm(monkeypatch: pytest.MonkeyPatch, sandbox: RunningSandbox) -> RunningSandbox:
    """firebase-admin pointed at the sandbox's fake FCM, so pushes really go out."""
    monkeypatch.setenv("FCM_PROVIDER", "sandbox")
    monkeypatch.setenv("FCM_SANDBOX_URL", f"{sandbox.url}/fcm")
    return sandbox

"""What the inbox tests share: the sandbox on a loopback port, an organisation connected to it,
and a sync requested the way the user module requests one.

Import the fixtures in a test package's conftest (``from tests.inbox_support import *``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from app.contracts.user import UserTaskSyncRequested
from app.core.db import session_scope
from app.core.inbox.settings import get_inbox_settings
from app.core.settings import Settings, get_settings, reset_settings
from app.events import publish
from app.integrations.connections.schemas import IntegrationKind, OracleFusionChanges, YardiChanges
from app.integrations.connections.service import set_connection
from tests.factories import Account, admin, employee, org, settle
from tests.integrations.conftest import (
    PASSWORD,
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
    "RunningSandbox",
    "admin",
    "clock",
    "connected",
    "demo_key",
    "employee",
    "loopback",
    "org",
    "sandbox",
    "sandbox_settings",
    "settings",
]

EMMA = "EMMA.EMPLOYEE"
"""The demo employee's Oracle username (person 1 of the sandbox)."""


@pytest.fixture
def settings(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """The test settings: integration retries that do not wait, pushes sent at once."""
    monkeypatch.setenv("HTTP_RETRY_BACKOFF_SECONDS", "0")
    monkeypatch.setenv("HTTP_RETRY_BACKOFF_MAX_SECONDS", "0")
    monkeypatch.setenv("HTTP_RETRY_AFTER_MAX_SECONDS", "0")
    monkeypatch.setenv("HTTP_BREAKER_FAILURE_THRESHOLD", "5")
    monkeypatch.setenv("NOTIFICATIONS_SUMMARY_WINDOW_SECONDS", "0")
    reset_settings()
    get_inbox_settings.cache_clear()
    yield get_settings()
    reset_settings()
    get_inbox_settings.cache_clear()


@pytest.fixture
async def connected(
    app: FastAPI, org: uuid.UUID, sandbox: RunningSandbox, demo_key: tuple[Path, str]
) -> RunningSandbox:
    """``org`` connected to the sandbox: Oracle with per-user JWTs, Yardi's interface account."""
    await connect(org, sandbox, demo_key[1])
    return sandbox


async def connect(
    organization_id: uuid.UUID, sandbox: RunningSandbox, pem: str, *, auth_mode: str = "jwt"
) -> None:
    async with session_scope() as session:
        await set_connection(
            session,
            organization_id=organization_id,
            kind=IntegrationKind.ORACLE_FUSION,
            changes=OracleFusionChanges(
                base_url=f"{sandbox.url}/oracle",
                auth_mode=auth_mode,
                username="integration",
                password=SecretStr(PASSWORD),
                jwt_private_key=SecretStr(pem),
                jwt_issuer="workflow-hub-tests",
                framework_version=4,
            ),
        )
        await set_connection(
            session,
            organization_id=organization_id,
            kind=IntegrationKind.YARDI,
            changes=YardiChanges(
                base_url=f"{sandbox.url}/yardi",
                username="integration",
                password=SecretStr(PASSWORD),
                server_name="sandbox",
                database="sandbox_live",
                interface_entity="Workflow Hub",
                interface_license=SecretStr("SANDBOX-LICENSE"),
            ),
        )


async def publish_sync(account: Account, *, oracle_username: str = EMMA) -> None:
    """Ask every inbox to sync ``account`` as the user module does (committed, not awaited)."""
    async with session_scope():
        await publish(
            UserTaskSyncRequested(
                organization_id=account.organization_id,
                user_id=account.user_id,
                email=account.email,
                oracle_username=oracle_username,
                person_number="100002",
            )
        )


async def request_sync(app: FastAPI, account: Account, *, oracle_username: str = EMMA) -> None:
    """Ask every inbox to sync ``account`` as the user module does, and wait for the relays."""
    await publish_sync(account, oracle_username=oracle_username)
    await settle(app)


async def tasks(
    client: httpx.AsyncClient, module: str, account: Account, **params: str
) -> dict[str, Any]:
    response = await client.get(f"/api/v1/{module}/tasks", headers=account.headers, params=params)
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


async def received_actions(sandbox: RunningSandbox, source: str, **params: str) -> list[Any]:
    """The task actions the sandbox's ``source`` (oracle, yardi) received, newest first."""
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{sandbox.url}/{source}/actions", params=params)
    assert response.status_code == 200, response.text
    found: list[Any] = response.json()["items"]
    return found


async def decide_elsewhere(sandbox: RunningSandbox, source: str, **body: Any) -> None:
    """Decide a task at the source directly, as someone using Oracle or Yardi itself."""
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{sandbox.url}/{source}/decisions", json=body)
    assert response.status_code == 200, response.text

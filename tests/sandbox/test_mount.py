"""``make run``'s shape: the sandbox mounted beside the API, the demo organisation pointed at it,
and the integration runtime reaching it over real HTTP, as the modules will."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from app.core.db import Database, session_scope
from app.core.settings import get_settings, reset_settings
from app.core.tenancy import get_organization_by_name
from app.integrations.fcm import PushMessage
from app.integrations.runtime import get_integrations
from app.main import create_app
from tests.loopback import serve


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_the_sandbox_is_not_mounted_unless_enabled(client: httpx.AsyncClient) -> None:
    assert (await client.get("/sandbox/")).status_code == 404


async def test_the_demo_runs_against_the_mounted_sandbox(
    db: Database, monkeypatch: pytest.MonkeyPatch, demo_key: tuple[Path, str]
) -> None:
    port = _free_port()
    monkeypatch.setenv("PORT", str(port))
    monkeypatch.setenv("SANDBOX_ENABLED", "true")
    monkeypatch.setenv("APP_SEED_DEMO", "true")
    monkeypatch.setenv("SANDBOX_JWT_KEY_FILE", str(demo_key[0]))
    monkeypatch.setenv("EVENTS_RELAY_ENABLED", "false")
    reset_settings()
    try:
        app = create_app(get_settings())
        async with serve(app, port=port, lifespan="on") as base:
            async with httpx.AsyncClient() as http:
                index = (await http.get(f"{base}/sandbox/")).json()
            assert index["systems"] == ["oracle", "yardi", "fcm"]
            integrations = get_integrations()
            async with session_scope() as session:
                demo = await get_organization_by_name(session, "Demo")
                assert demo is not None
                oracle = await integrations.oracle_fusion(
                    session, organization_id=demo.id, acting_user="EMMA.EMPLOYEE"
                )
                account = await integrations.oracle_fusion(session, organization_id=demo.id)
                yardi = await integrations.yardi(session, organization_id=demo.id)
            assert oracle.base_url == f"http://127.0.0.1:{port}/sandbox/oracle"
            worker = await oracle.get_worker_by_username("EMMA.EMPLOYEE")
            assert [m.display_name for m in worker.line_managers] == ["Alex Admin"]
            mine = await oracle.list_tasks()
            assert len(mine) == 4
            everyone = await account.list_tasks(assignment="ALL", assignee="EMMA.EMPLOYEE")
            assert [t.number for t in everyone] == [t.number for t in mine]
            assert len(await yardi.pending_approvals(approver="EMMA.EMPLOYEE")) == 2
            assert integrations.push.name == "sandbox"
            sent = await integrations.push.send(
                PushMessage(token="demo-device-token-1", title="Hi")
            )
            assert sent.success
            assert app.state.sandbox.fcm.sent[0]["message"]["token"] == "demo-device-token-1"
        with pytest.raises(RuntimeError):
            get_integrations()  # closed and uninstalled with the lifespan
    finally:
        reset_settings()

"""The console's sandbox page: only where the sandbox is mounted; what its fake FCM accepted."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI

from app.core.settings import reset_settings
from tests.console.support import browser, console_login
from tests.factories import Account

SEND = "/sandbox/fcm/v1/projects/demo/messages:send"


@pytest.fixture
def mounted(monkeypatch: pytest.MonkeyPatch, demo_key: tuple[Path, str]) -> None:
    """Mount the sandbox in the app (set before the app's settings are read)."""
    monkeypatch.setenv("SANDBOX_ENABLED", "true")
    monkeypatch.setenv("SANDBOX_JWT_KEY_FILE", str(demo_key[0]))
    reset_settings()


@pytest.mark.usefixtures("mounted")
async def test_the_page_lists_the_pushes_the_fake_fcm_accepted_escaped(
    app: FastAPI, admin: Account
) -> None:
    async with browser(app) as client:
        message = {
            "token": "demo-device-token-1",
            "notification": {"title": "3 new approvals", "body": "<i>2 procurement</i>"},
            "data": {"kind": "summary"},
        }
        sent = await client.post(
            SEND, json={"message": message}, headers={"Authorization": "Bearer x"}
        )
        assert sent.status_code == 200, sent.text
        await console_login(client, admin)
        overview = await client.get("/console")
        assert 'href="/console/sandbox"' in overview.text  # in the navigation
        page = await client.get("/console/sandbox")
        assert page.status_code == 200
        assert "(1 in all)" in page.text
        assert "3 new approvals" in page.text
        assert "&lt;i&gt;2 procurement&lt;/i&gt;" in page.text
        assert "<i>2 procurement</i>" not in page.text
        assert "<code>kind</code>=summary" in page.text
        assert 'data-refresh-url="/console/sandbox/live"' in page.text
        live = await client.get("/console/sandbox/live", headers={"X-Console-Fragment": "1"})
        assert "3 new approvals" in live.text
        assert "<html" not in live.text


@pytest.mark.usefixtures("mounted")
async def test_the_page_lists_the_actions_oracle_received_escaped(
    app: FastAPI, admin: Account
) -> None:
    async with browser(app) as client:
        acted = await client.put(
            "/sandbox/oracle/bpm/api/4.0/tasks/999999",
            json={"action": {"id": "APPROVE"}, "comment": {"commentStr": "<b>ok</b>"}},
            auth=("integration", "sandbox-password"),
        )
        assert acted.status_code == 404, acted.text  # no such task: recorded all the same
        await console_login(client, admin)
        page = await client.get("/console/sandbox")
        table = page.text.split('class="list actions-oracle"', 1)[1].split("</table>", 1)[0]
        assert "<td>999999</td>" in table
        assert "<td>APPROVE</td>" in table
        assert "<td>integration</td>" in table
        assert "&lt;b&gt;ok&lt;/b&gt;" in table
        assert '<span class="pill failed">not_found</span>' in table
        yardi = page.text.split('class="list actions-yardi"', 1)[1].split("</table>", 1)[0]
        assert "No action yet." in yardi


async def test_without_the_sandbox_the_page_does_not_exist(app: FastAPI, admin: Account) -> None:
    async with browser(app) as client:
        await console_login(client, admin)
        assert 'href="/console/sandbox"' not in (await client.get("/console")).text
        for path in ("/console/sandbox", "/console/sandbox/live"):
            response = await client.get(path)
            assert response.status_code == 404
            assert "sandbox_not_mounted" in response.text

"""The console's integrations: settings without secrets, a live test call, the breaker."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from app.sandbox.state import Fault
from tests.console.support import browser, console_login, csrf_of
from tests.factories import Account, create_org, logged_in_user
from tests.integrations.conftest import PASSWORD, RunningSandbox

ORACLE = "/api/v1/admin/integrations/oracle_fusion"
YARDI = "/api/v1/admin/integrations/yardi"


async def _connect(client: httpx.AsyncClient, admin: Account, sandbox: RunningSandbox) -> None:
    oracle = {
        "base_url": f"{sandbox.url}/oracle",
        "auth_mode": "basic",
        "username": "integration",
        "password": PASSWORD,
    }
    yardi = {
        "base_url": f"{sandbox.url}/yardi",
        "username": "integration",
        "password": PASSWORD,
        "server_name": "sandbox",
        "database": "sandbox_live",
        "interface_entity": "Workflow Hub",
        "interface_license": "SANDBOX-LICENSE",
    }
    for path, body in ((ORACLE, oracle), (YARDI, yardi)):
        response = await client.put(path, json=body, headers=admin.headers)
        assert response.status_code == 200, response.text


async def test_settings_show_secrets_only_as_set_and_a_test_call_answers(
    app: FastAPI, client: httpx.AsyncClient, admin: Account, sandbox: RunningSandbox
) -> None:
    await _connect(client, admin, sandbox)
    async with browser(app) as console:
        await console_login(console, admin)
        page = await console.get("/console/integrations")
        assert page.status_code == 200
        assert f"{sandbox.url}/oracle" in page.text
        assert PASSWORD not in page.text
        assert "SANDBOX-LICENSE" not in page.text
        assert '<dt>password</dt><dd><span class="pill ok">set</span></dd>' in page.text
        assert '<dt>jwt_private_key</dt><dd><span class="pill ">not set</span></dd>' in page.text
        token = csrf_of(page)
        for kind, system in (("oracle_fusion", "oracle"), ("yardi", "yardi")):
            before = sandbox.state.traffic[system].requests
            answered = await console.post(
                f"/console/integrations/{kind}/test", data={"csrf_token": token}
            )
            assert answered.status_code == 200
            assert "Test connection: It answered" in answered.text
            assert sandbox.state.traffic[system].requests == before + 1  # one cheap call

        assert "None in this process." in answered.text  # no recent error yet
        sandbox.state.inject("yardi", Fault(503, times=10))
        down = await console.post("/console/integrations/yardi/test", data={"csrf_token": token})
        # Yardi answers a server fault as a SOAP fault with HTTP 500.
        assert "Test connection: unavailable (HTTP 500)" in down.text
        yardi = down.text.split('id="yardi"', 1)[1]
        assert "Recent errors (1)" in yardi
        assert "HTTP 500 on POST /sandbox/yardi/webservices/" in yardi
        oracle = down.text.split('id="oracle_fusion"', 1)[1].split('id="yardi"', 1)[0]
        assert "Recent errors (0)" in oracle

        sandbox.state.inject("oracle", Fault(401, times=1))
        refused = await console.post(
            "/console/integrations/oracle_fusion/test", data={"csrf_token": token}
        )
        assert refused.status_code == 200
        assert 'class="error check"' in refused.text
        assert "auth (HTTP 401)" in refused.text

        no_token = await console.post("/console/integrations/yardi/test")
        assert no_token.status_code == 403
        unknown = await console.post("/console/integrations/sap/test", data={"csrf_token": token})
        assert unknown.status_code == 422


async def test_an_unconfigured_integration_says_so_and_cannot_be_tested(
    app: FastAPI, client: httpx.AsyncClient, admin: Account, sandbox: RunningSandbox
) -> None:
    await _connect(client, admin, sandbox)
    other_admin = await logged_in_user(client, await create_org(), role="admin")
    async with browser(app) as console:
        await console_login(console, other_admin)
        page = await console.get("/console/integrations")
        assert page.status_code == 200
        assert sandbox.url not in page.text  # the other organisation's settings stay hidden
        assert page.text.count("is not configured for this organisation.") == 2
        refused = await console.post(
            "/console/integrations/oracle_fusion/test", data={"csrf_token": csrf_of(page)}
        )
        assert "Test connection: oracle_fusion is not configured" in refused.text

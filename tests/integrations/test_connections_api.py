"""Admin REST routes of the integration connections, and upstream errors as problems."""

from __future__ import annotations

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from sqlalchemy import select

from app.core.db import session_scope
from app.core.settings import reset_settings
from app.integrations.connections.models import IntegrationConnection
from app.integrations.connections.service import InvalidIntegrationSettings
from app.integrations.errors import (
    AlreadyDecidedError,
    AuthError,
    RateLimitedError,
    UnavailableError,
)
from app.integrations.runtime import Integrations
from tests import factories
from tests.factories import Account, create_org, logged_in_user, problem_code

admin = factories.admin
employee = factories.employee
org = factories.org

ORACLE = "/api/v1/admin/integrations/oracle_fusion"
YARDI = "/api/v1/admin/integrations/yardi"
SECRET = "s3cret-Pa55word"

YARDI_BODY = {
    "base_url": "https://yardi.example.com/Voyager",
    "username": "iface",
    "password": SECRET,
    "server_name": "srv",
    "database": "db1",
    "interface_entity": "Workflow Hub",
    "interface_license": "LICENSE-BLOB",
}


async def test_an_admin_sets_and_reads_a_connection_without_seeing_secrets(
    client: httpx.AsyncClient, admin: Account
) -> None:
    missing = await client.get(ORACLE, headers=admin.headers)
    assert missing.status_code == 404
    assert problem_code(missing) == "integration_not_configured"

    body = {
        "base_url": "https://pod.example.com/",
        "username": "integration",
        "password": SECRET,
    }
    saved = await client.put(ORACLE, json=body, headers=admin.headers)
    assert saved.status_code == 200, saved.text
    assert SECRET not in saved.text
    settings = saved.json()["settings"]
    assert settings["base_url"] == "https://pod.example.com"
    assert settings["password_set"] is True
    assert "password" not in settings

    moved = await client.put(
        ORACLE, json={"base_url": "https://other.example.com"}, headers=admin.headers
    )
    assert moved.status_code == 200
    assert moved.json()["settings"]["password_set"] is True  # a partial change keeps secrets

    read = await client.get(ORACLE, headers=admin.headers)
    assert read.json()["settings"]["base_url"] == "https://other.example.com"
    assert SECRET not in read.text
    async with session_scope() as session:
        row = (await session.execute(select(IntegrationConnection))).scalar_one()
    assert SECRET.encode() not in str(row.secrets).encode()


async def test_yardi_connection_round_trip(client: httpx.AsyncClient, admin: Account) -> None:
    saved = await client.put(YARDI, json=YARDI_BODY, headers=admin.headers)
    assert saved.status_code == 200, saved.text
    settings = saved.json()["settings"]
    assert settings["interface_license_set"] is True
    assert "LICENSE-BLOB" not in saved.text
    assert (await client.get(YARDI, headers=admin.headers)).json()["settings"]["database"] == "db1"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (
            {"base_url": "ftp://pod.example.com", "username": "u", "password": "p"},
            "invalid_integration_settings",
        ),
        ({"base_url": "https://pod.example.com"}, "invalid_integration_settings"),
        ({"base_url": "https://pod.example.com", "surprise": 1}, "validation_error"),
        (
            {"base_url": "https://pod.example.com", "auth_mode": "jwt", "jwt_private_key": SECRET},
            "invalid_integration_settings",
        ),
    ],
)
async def test_bad_settings_are_refused_without_echoing_secrets(
    client: httpx.AsyncClient, admin: Account, body: dict[str, object], code: str
) -> None:
    response = await client.put(ORACLE, json=body, headers=admin.headers)
    assert 400 <= response.status_code < 500
    assert response.headers["content-type"] == "application/problem+json"
    assert problem_code(response) == code
    assert SECRET not in response.text
    assert (await client.get(ORACLE, headers=admin.headers)).status_code == 404


async def test_only_an_admin_removes_the_organisations_own_connection(
    client: httpx.AsyncClient, admin: Account, employee: Account
) -> None:
    assert (await client.put(YARDI, json=YARDI_BODY, headers=admin.headers)).status_code == 200
    other = await logged_in_user(client, organization_id=await create_org(), role="admin")
    foreign = await client.delete(YARDI, headers=other.headers)  # another tenant has none
    assert (foreign.status_code, problem_code(foreign)) == (404, "integration_not_configured")
    assert (await client.delete(YARDI, headers=employee.headers)).status_code == 403
    assert (await client.delete(YARDI)).status_code == 401
    assert (await client.get(YARDI, headers=admin.headers)).status_code == 200  # still there
    assert (await client.delete(YARDI, headers=admin.headers)).status_code == 204


async def test_an_unknown_kind_is_422(client: httpx.AsyncClient, admin: Account) -> None:
    response = await client.get("/api/v1/admin/integrations/salesforce", headers=admin.headers)
    assert response.status_code == 422
    assert problem_code(response) == "validation_error"


async def test_only_admins_of_the_same_organisation(
    client: httpx.AsyncClient, admin: Account, employee: Account
) -> None:
    await client.put(YARDI, json=YARDI_BODY, headers=admin.headers)
    forbidden = await client.get(YARDI, headers=employee.headers)
    assert forbidden.status_code == 403
    assert problem_code(forbidden) == "admin_required"
    assert (await client.put(YARDI, json=YARDI_BODY)).status_code == 401

    other = await logged_in_user(client, await create_org(), role="admin")
    elsewhere = await client.get(YARDI, headers=other.headers)
    assert elsewhere.status_code == 404
    assert problem_code(elsewhere) == "integration_not_configured"


@pytest.mark.parametrize(
    ("error", "status", "code", "retry_after"),
    [
        (UnavailableError("down", integration="oracle_fusion"), 503, "upstream_unavailable", None),
        (
            RateLimitedError("slow down", integration="yardi", retry_after=7.2),
            503,
            "upstream_rate_limited",
            "8",  # whole seconds, rounded up: never sooner than the system asked
        ),
        (
            AuthError("pod 7 says no", integration="oracle_fusion", status=401),
            502,
            "upstream_auth",
            None,
        ),
        (
            AlreadyDecidedError("done", integration="oracle_fusion", status=409),
            409,
            "upstream_conflict",
            None,
        ),
    ],
)
async def test_unmapped_integration_errors_become_problems(
    app: FastAPI,
    client: httpx.AsyncClient,
    error: Exception,
    status: int,
    code: str,
    retry_after: str | None,
) -> None:
    router = APIRouter()

    @router.get("/test/upstream")
    async def upstream() -> None:
        raise error

    app.include_router(router)
    response = await client.get("/test/upstream")
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert problem_code(response) == code
    assert response.json()["integration"] in ("oracle_fusion", "yardi")
    assert str(error.detail) not in response.json()["detail"]  # type: ignore[attr-defined]
    assert response.headers.get("retry-after") == retry_after


async def test_base_urls_must_name_an_allowed_host(
    app: FastAPI, client: httpx.AsyncClient, admin: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_ALLOWED_HOSTS", "*.example.com, fusion.oraclecloud.com")
    reset_settings()
    assert (await client.put(YARDI, json=YARDI_BODY, headers=admin.headers)).status_code == 200
    for url in (
        "http://169.254.169.254/latest",
        "http://localhost:5432",
        "https://example.com.evil",
    ):
        refused = await client.put(YARDI, json={"base_url": url}, headers=admin.headers)
        assert refused.status_code == 422, url
        assert problem_code(refused) == "invalid_integration_settings"
        assert "HTTP_ALLOWED_HOSTS" in refused.json()["detail"]
    stored = (await client.get(YARDI, headers=admin.headers)).json()["settings"]["base_url"]
    assert stored == YARDI_BODY["base_url"]  # nothing was written

    monkeypatch.setenv("HTTP_ALLOWED_HOSTS", "fusion.oraclecloud.com")  # tightened later
    reset_settings()
    integrations: Integrations = app.state.integrations
    async with session_scope() as session:
        with pytest.raises(InvalidIntegrationSettings, match=r"yardi\.example\.com"):
            await integrations.yardi(session, organization_id=admin.organization_id)

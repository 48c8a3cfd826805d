"""Access tokens on every request: bad tokens, revoked sessions, roles, and the 401 sweep."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
import jwt
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import Connection, event

from app.core.db import get_database, session_scope, utcnow
from app.core.security import Principal, create_access_token
from app.core.settings import Settings
from app.modules.auth.service import validate_session
from tests.factories import Account, create_user, log_in, problem_code

ME = "/api/v1/users/me"

PUBLIC = {
    ("POST", "/api/v1/auth/login"),
    ("POST", "/api/v1/auth/refresh"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
}
"""Routes that answer without a token. Adding one here is a security decision."""


def _principal(account: Account, **changes: object) -> Principal:
    claims = jwt.decode(account.access_token, options={"verify_signature": False})
    values: dict[str, object] = {
        "user_id": account.user_id,
        "organization_id": account.organization_id,
        "role": claims["role"],
        "user_type": claims["utype"],
        "session_id": uuid.UUID(claims["sid"]),
    }
    values.update(changes)
    return Principal(**values)  # type: ignore[arg-type]


async def test_every_non_public_route_answers_401_without_a_token(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    schema = (await client.get("/api/v1/openapi.json")).json()
    checked = []
    for path, operations in schema["paths"].items():
        for method in operations:
            if (method.upper(), path) in PUBLIC:
                continue
            url = path
            for name in [p["name"] for p in operations[method].get("parameters", [])]:
                url = url.replace("{" + name + "}", str(uuid.uuid4()))
            response = await client.request(method.upper(), url)
            assert response.status_code == 401, f"{method.upper()} {path}: {response.text}"
            assert problem_code(response) == "not_authenticated"
            assert operations[method].get("security"), f"{method.upper()} {path} lists no security"
            checked.append((method.upper(), path))
    assert ("GET", ME) in checked
    assert ("POST", "/api/v1/admin/organization/resync") in checked
    assert len(checked) >= 10


async def test_the_sweep_knows_every_public_route(app: FastAPI, client: httpx.AsyncClient) -> None:
    schema = (await client.get("/api/v1/openapi.json")).json()
    for method, path in PUBLIC:
        if path.startswith("/api/v1"):
            assert method.lower() in schema["paths"][path]
        else:  # answers without a token: 200, not a 404 that would also be "not 401"
            assert (await client.get(path)).status_code == 200, path


@pytest.mark.parametrize(
    ("header", "code"),
    [
        pytest.param("Bearer not.a.jwt", "token_invalid", id="malformed"),
        pytest.param("Bearer ", "not_authenticated", id="empty"),
        pytest.param("Basic dXNlcjpwYXNz", "not_authenticated", id="basic-scheme"),
    ],
)
async def test_malformed_authorization_headers(
    client: httpx.AsyncClient, app: FastAPI, header: str, code: str
) -> None:
    response = await client.get(ME, headers={"Authorization": header})
    assert response.status_code == 401
    assert problem_code(response) == code
    assert response.headers["www-authenticate"] == "Bearer"


async def test_expired_forged_and_tampered_tokens(
    client: httpx.AsyncClient, employee: Account, settings: Settings
) -> None:
    principal = _principal(employee)
    expired, _ = create_access_token(
        settings.security, principal, now=utcnow() - timedelta(hours=1)
    )
    other_key = settings.security.model_copy(update={"jwt_secret": SecretStr("x" * 40)})
    forged, _ = create_access_token(other_key, principal)
    none_alg = jwt.encode(
        jwt.decode(employee.access_token, options={"verify_signature": False}),
        key="",
        algorithm="none",
    )
    cases = {
        "token_expired": expired,
        "token_invalid": forged,
    }
    for code, token in cases.items():
        response = await client.get(ME, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, token
        assert problem_code(response) == code
    response = await client.get(ME, headers={"Authorization": f"Bearer {none_alg}"})
    assert problem_code(response) == "token_invalid"


async def test_a_token_for_another_session_or_user_is_refused(
    client: httpx.AsyncClient, employee: Account, settings: Settings
) -> None:
    for changes in ({"session_id": uuid.uuid4()}, {"user_id": uuid.uuid4()}):
        token, _ = create_access_token(settings.security, _principal(employee, **changes))
        response = await client.get(ME, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401
        assert problem_code(response) == "session_revoked"


async def test_a_deleted_users_tokens_stop_working_at_once(
    client: httpx.AsyncClient, admin: Account, employee: Account
) -> None:
    assert (await client.get(ME, headers=employee.headers)).status_code == 200
    deleted = await client.delete(f"/api/v1/users/{employee.user_id}", headers=admin.headers)
    assert deleted.status_code == 204
    response = await client.get(ME, headers=employee.headers)
    assert response.status_code == 401
    assert problem_code(response) == "session_revoked"
    refresh = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": employee.refresh_token}
    )
    assert problem_code(refresh) == "session_revoked"


async def test_deactivation_ends_sessions_and_a_demotion_applies_at_once(
    client: httpx.AsyncClient, admin: Account, org: uuid.UUID
) -> None:
    other_admin = await log_in(client, await create_user(org, role="admin"))
    assert (await client.get("/api/v1/users", headers=other_admin.headers)).status_code == 200
    demote = await client.patch(
        f"/api/v1/users/{other_admin.user_id}", headers=admin.headers, json={"role": "employee"}
    )
    assert demote.status_code == 200
    response = await client.get("/api/v1/users", headers=other_admin.headers)
    assert response.status_code == 403
    assert problem_code(response) == "admin_required"
    deactivate = await client.patch(
        f"/api/v1/users/{other_admin.user_id}", headers=admin.headers, json={"is_active": False}
    )
    assert deactivate.status_code == 200
    assert problem_code(await client.get(ME, headers=other_admin.headers)) == "session_revoked"


async def test_non_admins_get_403_on_admin_routes(
    client: httpx.AsyncClient, employee: Account
) -> None:
    some_id = uuid.uuid4()
    calls = [
        ("GET", "/api/v1/users", None),
        ("POST", "/api/v1/users", {"email": "x@example.com", "password": "password-1"}),
        ("GET", f"/api/v1/users/{some_id}", None),
        ("PATCH", f"/api/v1/users/{some_id}", {"first_name": "X"}),
        ("DELETE", f"/api/v1/users/{some_id}", None),
        ("POST", f"/api/v1/admin/users/{some_id}/resync", None),
        ("POST", "/api/v1/admin/organization/resync", None),
    ]
    for method, url, body in calls:
        response = await client.request(method, url, headers=employee.headers, json=body)
        assert response.status_code == 403, f"{method} {url}"
        assert problem_code(response) == "admin_required"


async def test_the_session_check_is_one_primary_key_lookup(
    client: httpx.AsyncClient, employee: Account
) -> None:
    statements: list[str] = []

    def record(conn: Connection, _cursor: object, statement: str, *_: object) -> None:
        if conn is connection:
            statements.append(statement)

    engine = get_database().engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        async with session_scope() as session:
            connection = (await session.connection()).sync_connection
            principal = await validate_session(session, _principal(employee))
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert principal.user_id == employee.user_id
    assert len(statements) == 1
    assert "FROM auth_sessions" in statements[0]
    assert "WHERE auth_sessions.id =" in statements[0]

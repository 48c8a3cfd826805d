"""POST /auth/login: tokens, claims, events, device sessions and bad input."""

from __future__ import annotations

import uuid

import httpx
import jwt
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from app.contracts.auth import UserLoggedIn
from app.core.db import session_scope
from app.core.settings import Settings
from app.events.testing import capture_events
from app.modules.auth.models import Account as AuthAccount
from app.modules.user.models import DeviceSession
from tests.factories import PASSWORD, Account, create_org, create_user, login, problem_code


async def test_login_returns_a_bearer_pair_with_the_claims(
    client: httpx.AsyncClient, org: uuid.UUID, settings: Settings
) -> None:
    user = await create_user(org, role="admin", email="Ada@Example.com")
    response = await login(client, "ada@example.com", PASSWORD)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == settings.security.access_token_ttl_seconds
    claims = jwt.decode(
        body["access_token"],
        settings.security.jwt_secret.get_secret_value(),
        algorithms=[settings.security.jwt_algorithm],
    )
    assert claims["sub"] == str(user.user_id)
    assert claims["org"] == str(org)
    assert claims["role"] == "admin"
    assert claims["utype"] == "EMPLOYEE"
    assert uuid.UUID(claims["sid"])
    assert claims["exp"] - claims["iat"] == settings.security.access_token_ttl_seconds
    assert claims["jti"]


async def test_login_emits_auth_login_and_records_the_device_session(
    app: FastAPI, client: httpx.AsyncClient, org: uuid.UUID
) -> None:
    user = await create_user(org)
    device = {"token": "fcm-token-1", "platform": "android", "name": "Pixel"}
    with capture_events(app.state.emitter) as captured:
        response = await login(client, user.email, PASSWORD, device=device)
    assert response.status_code == 200
    event = captured.one(UserLoggedIn)
    assert event.user_id == user.user_id
    assert event.organization_id == org
    assert event.device is not None
    assert event.device.token == "fcm-token-1"
    assert event.device.platform == "android"
    async with session_scope() as session:
        stored = (await session.scalars(select(DeviceSession))).one()
    assert stored.session_id == event.session_id
    assert (stored.device_token, stored.platform, stored.device_name) == (
        "fcm-token-1",
        "android",
        "Pixel",
    )
    assert stored.logged_out_at is None


async def test_wrong_password_and_unknown_email_look_the_same(
    client: httpx.AsyncClient, org: uuid.UUID
) -> None:
    user = await create_user(org)
    wrong = await login(client, user.email, "not-the-password")
    unknown = await login(client, "nobody@example.com", PASSWORD)
    for response in (wrong, unknown):
        assert response.status_code == 401
        assert problem_code(response) == "invalid_credentials"
        assert response.headers["www-authenticate"] == "Bearer"
    strip = {"correlation_id"}
    assert {k: v for k, v in wrong.json().items() if k not in strip} == {
        k: v for k, v in unknown.json().items() if k not in strip
    }


async def test_passwords_are_stored_as_argon2id_hashes(
    client: httpx.AsyncClient, org: uuid.UUID
) -> None:
    user = await create_user(org)
    async with session_scope() as session:
        account = await session.get(AuthAccount, user.user_id)
    assert account is not None
    assert account.password_hash is not None
    assert account.password_hash.startswith("$argon2id$")
    assert PASSWORD not in account.password_hash


async def test_the_same_email_in_two_organisations(client: httpx.AsyncClient, app: FastAPI) -> None:
    first, second = await create_org(), await create_org()
    one = await create_user(first, email="shared@example.com", password="password-one")
    await create_user(second, email="shared@example.com", password="password-two")
    response = await login(client, "shared@example.com", "password-two")
    assert response.status_code == 200
    claims = jwt.decode(response.json()["access_token"], options={"verify_signature": False})
    assert claims["org"] == str(second)
    await create_user(second, email="twin@example.com")
    await create_user(first, email="twin@example.com")
    ambiguous = await login(client, "twin@example.com", PASSWORD)
    assert ambiguous.status_code == 409
    assert problem_code(ambiguous) == "organization_required"
    chosen = await login(
        client, "twin@example.com", PASSWORD, organization_id=str(one.organization_id)
    )
    assert chosen.status_code == 200


BAD_BODIES = [
    pytest.param({"email": "not-an-email", "password": "x"}, ("body", "email"), id="invalid-email"),
    pytest.param({"email": "a@example.com", "password": ""}, ("body", "password"), id="empty-pw"),
    pytest.param({"email": "a@example.com"}, ("body", "password"), id="missing-password"),
    pytest.param(
        {
            "email": "a@example.com",
            "password": "x",
            "device": {"token": "t", "platform": "symbian"},
        },
        ("body", "device", "platform"),
        id="unknown-platform",
    ),
    pytest.param(
        {
            "email": "a@example.com",
            "password": "x",
            "device": {"token": "t" * 4097, "platform": "ios"},
        },
        ("body", "device", "token"),
        id="oversized-device-token",
    ),
    pytest.param(
        {"email": "a@example.com", "password": "x", "remember_me": True},
        ("body", "remember_me"),
        id="unknown-field",
    ),
    pytest.param(
        {
            "email": "a@example.com",
            "password": "x",
            "device": {"token": "t", "platform": "web", "x": 1},
        },
        ("body", "device", "x"),
        id="unknown-device-field",
    ),
]


@pytest.mark.parametrize(("body", "location"), BAD_BODIES)
async def test_bad_login_bodies_are_precise_422s(
    client: httpx.AsyncClient, app: FastAPI, body: dict[str, object], location: tuple[str, ...]
) -> None:
    response = await client.post("/api/v1/auth/login", json=body)
    assert response.status_code == 422
    assert problem_code(response) == "validation_error"
    assert [tuple(e["loc"]) for e in response.json()["errors"]] == [location]


async def test_a_deleted_user_cannot_log_in(
    client: httpx.AsyncClient, admin: Account, org: uuid.UUID
) -> None:
    user = await create_user(org)
    assert (
        await client.delete(f"/api/v1/users/{user.user_id}", headers=admin.headers)
    ).status_code == 204
    response = await login(client, user.email, PASSWORD)
    assert response.status_code == 401
    assert problem_code(response) == "invalid_credentials"


async def test_a_hash_with_old_parameters_is_upgraded_at_login(
    client: httpx.AsyncClient, org: uuid.UUID
) -> None:
    from argon2 import PasswordHasher

    user = await create_user(org)
    old_hash = PasswordHasher(time_cost=2, memory_cost=16, parallelism=1).hash(PASSWORD)
    async with session_scope() as session:
        account = await session.get(AuthAccount, user.user_id)
        assert account is not None
        account.password_hash = old_hash
    assert (await login(client, user.email, PASSWORD)).status_code == 200
    async with session_scope() as session:
        account = await session.get(AuthAccount, user.user_id)
    assert account is not None
    assert account.password_hash != old_hash
    assert account.password_hash is not None
    assert account.password_hash.startswith("$argon2id$v=19$m=8,t=1,p=1$")

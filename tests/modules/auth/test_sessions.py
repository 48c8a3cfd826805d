"""Refresh-token rotation with reuse detection, logout, and revocation that takes effect at once."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import select, update

from app.contracts.auth import UserLoggedOut
from app.core.db import session_scope, utcnow
from app.events.testing import capture_events
from app.modules.auth.models import AuthSession, RefreshToken
from app.modules.user.models import DeviceSession
from tests.factories import Account, create_user, log_in, logged_in_user, problem_code

ME = "/api/v1/users/me"
REFRESH = "/api/v1/auth/refresh"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_refresh_rotates_the_pair(client: httpx.AsyncClient, employee: Account) -> None:
    response = await client.post(REFRESH, json={"refresh_token": employee.refresh_token})
    assert response.status_code == 200, response.text
    pair = response.json()
    assert pair["token_type"] == "bearer"
    assert pair["refresh_token"] != employee.refresh_token
    assert pair["access_token"] != employee.access_token
    assert (await client.get(ME, headers=bearer(pair["access_token"]))).status_code == 200
    again = await client.post(REFRESH, json={"refresh_token": pair["refresh_token"]})
    assert again.status_code == 200


async def test_reusing_a_rotated_refresh_token_revokes_the_whole_family(
    app: FastAPI, client: httpx.AsyncClient, employee: Account
) -> None:
    rotated = (await client.post(REFRESH, json={"refresh_token": employee.refresh_token})).json()
    with capture_events(app.state.emitter) as captured:
        reuse = await client.post(REFRESH, json={"refresh_token": employee.refresh_token})
    assert reuse.status_code == 401
    assert problem_code(reuse) == "refresh_token_reused"
    assert captured.one(UserLoggedOut).user_id == employee.user_id
    # Everything of that family is dead now: the thief's new pair and the victim's tokens.
    stolen = await client.post(REFRESH, json={"refresh_token": rotated["refresh_token"]})
    assert stolen.status_code == 401
    assert problem_code(stolen) == "session_revoked"
    for token in (rotated["access_token"], employee.access_token):
        response = await client.get(ME, headers=bearer(token))
        assert response.status_code == 401
        assert problem_code(response) == "session_revoked"
    async with session_scope() as session:
        stored = (await session.scalars(select(AuthSession))).one()
    assert stored.revoked_reason == "refresh_token_reused"


async def test_unknown_and_expired_refresh_tokens(
    client: httpx.AsyncClient, employee: Account
) -> None:
    unknown = await client.post(REFRESH, json={"refresh_token": "made-up"})
    assert unknown.status_code == 401
    assert problem_code(unknown) == "token_invalid"
    async with session_scope() as session:
        await session.execute(update(RefreshToken).values(expires_at=utcnow() - timedelta(1)))
    expired = await client.post(REFRESH, json={"refresh_token": employee.refresh_token})
    assert expired.status_code == 401
    assert problem_code(expired) == "token_expired"
    for body in ({}, {"refresh_token": ""}, {"refresh_token": "x", "extra": 1}):
        bad = await client.post(REFRESH, json=body)
        assert bad.status_code == 422
        assert problem_code(bad) == "validation_error"


async def test_logout_revokes_the_session_at_once_and_ends_the_device_session(
    app: FastAPI, client: httpx.AsyncClient, org: uuid.UUID
) -> None:
    device = {"token": "push-1", "platform": "ios"}
    user = await log_in(client, await create_user(org), device=device)
    with capture_events(app.state.emitter) as captured:
        response = await client.post("/api/v1/auth/logout", headers=user.headers)
    assert response.status_code == 204
    event = captured.one(UserLoggedOut)
    assert (event.user_id, event.organization_id, event.device_token) == (
        user.user_id,
        org,
        "push-1",
    )
    after = await client.get(ME, headers=user.headers)
    assert after.status_code == 401
    assert problem_code(after) == "session_revoked"
    refresh = await client.post(REFRESH, json={"refresh_token": user.refresh_token})
    assert problem_code(refresh) == "session_revoked"
    async with session_scope() as session:
        device_session = (await session.scalars(select(DeviceSession))).one()
    assert device_session.session_id == event.session_id
    assert device_session.logged_out_at is not None


async def test_logout_mobile_releases_the_sessions_own_device(
    app: FastAPI, client: httpx.AsyncClient, org: uuid.UUID
) -> None:
    user = await log_in(client, await create_user(org), device={"token": "a", "platform": "web"})
    other = await logged_in_user(client, org)
    with capture_events(app.state.emitter) as captured:
        named = await client.post(
            "/api/v1/auth/logout-mobile", headers=user.headers, json={"device_token": "a"}
        )
        bare = await client.post("/api/v1/auth/logout-mobile", headers=other.headers)
    assert named.status_code == bare.status_code == 204
    assert [e.device_token for e in captured.of(UserLoggedOut)] == ["a", None]
    live = await logged_in_user(client, org)
    bad = await client.post(
        "/api/v1/auth/logout-mobile", headers=live.headers, json={"device_token": "x" * 5000}
    )
    assert bad.status_code == 422
    assert problem_code(bad) == "validation_error"


async def test_logout_mobile_refuses_another_sessions_device_token(
    app: FastAPI, client: httpx.AsyncClient, org: uuid.UUID
) -> None:
    victim_device = {"token": "victim-push", "platform": "ios"}
    victim = await log_in(client, await create_user(org), device=victim_device)
    attacker = await log_in(
        client, await create_user(org), device={"token": "attacker-push", "platform": "android"}
    )
    bare = await logged_in_user(client, org)  # a session with no device at all
    with capture_events(app.state.emitter) as captured:
        for caller in (attacker, bare):
            refused = await client.post(
                "/api/v1/auth/logout-mobile",
                headers=caller.headers,
                json={"device_token": "victim-push"},
            )
            assert refused.status_code == 403, refused.text
            assert problem_code(refused) == "device_not_bound"
    assert captured.of(UserLoggedOut) == []  # nobody's device was released
    for account in (victim, attacker, bare):  # and every session is still live
        assert (await client.get(ME, headers=account.headers)).status_code == 200
    async with session_scope() as session:
        devices = (await session.scalars(select(DeviceSession))).all()
    assert all(d.logged_out_at is None for d in devices)


async def test_logging_out_one_session_keeps_the_others(
    client: httpx.AsyncClient, employee: Account
) -> None:
    phone = await log_in(client, employee)
    assert (await client.post("/api/v1/auth/logout", headers=employee.headers)).status_code == 204
    assert (await client.get(ME, headers=phone.headers)).status_code == 200


async def test_setting_a_password_ends_the_users_other_sessions(
    client: httpx.AsyncClient, admin: Account, employee: Account
) -> None:
    second = await log_in(client, employee)  # the employee on a second device
    response = await client.patch(
        f"/api/v1/users/{employee.user_id}",
        json={"password": "a-brand-new-password"},
        headers=admin.headers,
    )
    assert response.status_code == 200, response.text
    for account in (employee, second):  # an admin's reset ends every session of the user
        refreshed = await client.post(REFRESH, json={"refresh_token": account.refresh_token})
        assert refreshed.status_code == 401
        assert problem_code(refreshed) == "session_revoked"
        assert (await client.get(ME, headers=account.headers)).status_code == 401
    # An admin who sets their own password keeps the session that did it, and only that one.
    other_admin_session = await log_in(client, admin)
    own = await client.patch(
        f"/api/v1/users/{admin.user_id}",
        json={"password": "another-new-password"},
        headers=admin.headers,
    )
    assert own.status_code == 200, own.text
    assert (await client.get(ME, headers=admin.headers)).status_code == 200
    assert (await client.get(ME, headers=other_admin_session.headers)).status_code == 401
    async with session_scope() as session:
        reasons = set(
            (
                await session.scalars(
                    select(AuthSession.revoked_reason).where(
                        AuthSession.revoked_reason.is_not(None)
                    )
                )
            ).all()
        )
    assert reasons == {"password_changed"}

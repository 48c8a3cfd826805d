"""Failed logins are throttled per email and per client address, in the database."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, update

from app.core.db import session_scope, utcnow
from app.core.settings import Settings
from app.modules.auth.models import LoginFailure
from tests.factories import PASSWORD, create_user, login, problem_code


async def _fail(client: httpx.AsyncClient, email: str, times: int) -> None:
    for _ in range(times):
        response = await login(client, email, "wrong-password")
        assert response.status_code == 401, response.text


async def test_five_failures_for_one_email_answer_429_with_retry_after(
    client: httpx.AsyncClient, org: uuid.UUID, settings: Settings
) -> None:
    user = await create_user(org)
    await _fail(client, user.email, settings.security.login_max_failures)
    response = await login(client, user.email, PASSWORD)  # even the right password
    assert response.status_code == 429
    assert problem_code(response) == "login_throttled"
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= settings.security.login_window_seconds
    assert response.json()["retry_after"] == retry_after


async def test_concurrent_wrong_guesses_are_all_counted(
    client: httpx.AsyncClient, org: uuid.UUID, settings: Settings
) -> None:
    user = await create_user(org)
    limit = settings.security.login_max_failures
    guesses = [login(client, user.email, f"wrong-{n}") for n in range(2 * limit)]
    responses = await asyncio.gather(*guesses)
    codes = [response.status_code for response in responses]
    assert set(codes) <= {401, 429}, [r.text for r in responses]
    assert codes.count(401) <= limit, codes  # before the fix: every guess was checked
    for response in responses:
        if response.status_code == 429:
            assert problem_code(response) == "login_throttled"
            assert int(response.headers["retry-after"]) >= 1
    # Each checked guess is counted; the throttled ones are not (they checked no password).
    async with session_scope() as session:
        counted = await session.scalar(
            select(func.count()).select_from(LoginFailure).where(LoginFailure.scope == "email")
        )
    assert counted == codes.count(401)
    # Within the window, no more than ``limit`` guesses are ever checked in all.
    later = [(await login(client, user.email, "wrong-again")).status_code for _ in range(limit)]
    assert codes.count(401) + later.count(401) == limit, (codes, later)
    assert (await login(client, user.email, PASSWORD)).status_code == 429


async def test_a_success_and_a_throttled_attempt_leave_no_failure_behind(
    client: httpx.AsyncClient, org: uuid.UUID, settings: Settings
) -> None:
    user = await create_user(org)
    assert (await login(client, user.email, PASSWORD)).status_code == 200
    async with session_scope() as session:
        assert await session.scalar(select(func.count()).select_from(LoginFailure)) == 0
    await _fail(client, user.email, settings.security.login_max_failures)
    for _ in range(3):  # hammering a throttled email does not lengthen the lockout
        assert (await login(client, user.email, "wrong-password")).status_code == 429
    async with session_scope() as session:
        counted = await session.scalar(
            select(func.count()).select_from(LoginFailure).where(LoginFailure.scope == "email")
        )
    assert counted == settings.security.login_max_failures


def _client_from(app: FastAPI, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def test_throttling_never_tells_whether_the_email_exists(
    app: FastAPI, org: uuid.UUID
) -> None:
    user = await create_user(org)
    async with _client_from(app, "10.0.0.1") as one, _client_from(app, "10.0.0.2") as two:
        await _fail(one, user.email, 5)
        await _fail(two, "ghost@example.com", 5)
        real = await login(one, user.email, "wrong-password")
        ghost = await login(two, "ghost@example.com", "wrong-password")
    assert real.status_code == ghost.status_code == 429
    keep = ("status", "code", "detail", "title", "type")
    assert {k: real.json()[k] for k in keep} == {k: ghost.json()[k] for k in keep}


async def test_failures_per_client_address_are_throttled(
    app: FastAPI, org: uuid.UUID, settings: Settings
) -> None:
    user = await create_user(org)
    async with _client_from(app, "10.0.0.3") as attacker, _client_from(app, "10.0.0.4") as other:
        for n in range(settings.security.login_address_max_failures):
            await _fail(attacker, f"guess{n}@example.com", 1)
        response = await login(attacker, user.email, PASSWORD)
        assert response.status_code == 429
        assert problem_code(response) == "login_throttled"
        # the same account from another address is not locked by someone else's guesses
        assert (await login(other, user.email, PASSWORD)).status_code == 200


async def test_throttling_survives_a_restart_and_expires_with_the_window(
    settings: Settings, client: httpx.AsyncClient, org: uuid.UUID
) -> None:
    from app.main import create_app

    user = await create_user(org)
    await _fail(client, user.email, 5)
    # A new application instance (a restart) reads the same failures from the database.
    restarted = create_app(settings)
    async with restarted.router.lifespan_context(restarted):
        transport = httpx.ASGITransport(app=restarted)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as other:
            assert (await login(other, user.email, PASSWORD)).status_code == 429
            async with session_scope() as session:
                await session.execute(
                    update(LoginFailure).values(failed_at=utcnow() - timedelta(seconds=61))
                )
            assert (await login(other, user.email, PASSWORD)).status_code == 200


async def test_a_success_clears_the_email_failures(
    client: httpx.AsyncClient, org: uuid.UUID
) -> None:
    user = await create_user(org)
    await _fail(client, user.email, 3)
    assert (await login(client, user.email, PASSWORD)).status_code == 200
    async with session_scope() as session:
        count = await session.scalar(
            select(func.count()).select_from(LoginFailure).where(LoginFailure.scope == "email")
        )
    assert count == 0


@pytest.mark.parametrize("limit", [2])
async def test_the_limits_are_settings(
    monkeypatch: pytest.MonkeyPatch, limit: int, database_url: str
) -> None:
    from app.core.db import close_database, init_database
    from app.core.settings import get_settings, reset_settings
    from app.main import create_app
    from tests.conftest import _truncate

    monkeypatch.setenv("AUTH_LOGIN_MAX_FAILURES", str(limit))
    monkeypatch.setenv("AUTH_LOGIN_ADDRESS_MAX_FAILURES", "100")
    reset_settings()
    settings = get_settings()
    database = init_database(settings.database)
    application: FastAPI = create_app(settings)
    try:
        async with application.router.lifespan_context(application):
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                await _fail(http, "limit@example.com", limit)
                assert (await login(http, "limit@example.com", "x")).status_code == 429
                assert (await login(http, "other@example.com", "x")).status_code == 401
    finally:
        await _truncate(database)
        await close_database()
        reset_settings()

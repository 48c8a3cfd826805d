"""A burst of logins never exhausts the pool, and an exhausted pool answers 503, never 500."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.pool import QueuePool

from app.core.db import get_database, own_transaction, session_scope
from app.core.settings import Settings, get_settings, reset_settings
from tests.factories import PASSWORD, create_user, login, problem_code


async def test_200_concurrent_wrong_logins_answer_only_401_or_429_and_readyz_stays_fast(
    client: httpx.AsyncClient, org: uuid.UUID
) -> None:
    users = [await create_user(org) for _ in range(4)]

    async def probe_readiness() -> tuple[httpx.Response, float]:
        await asyncio.sleep(0.05)  # while the burst is in flight
        started = time.perf_counter()
        response = await client.get("/readyz")
        return response, time.perf_counter() - started

    guesses = [login(client, users[n % 4].email, f"wrong-{n}") for n in range(200)]
    probe = asyncio.create_task(probe_readiness())
    responses = await asyncio.gather(*guesses)
    ready, took = await probe
    codes = [response.status_code for response in responses]
    assert set(codes) <= {401, 429}, {r.status_code: r.text for r in responses}
    assert ready.status_code == 200, ready.text
    assert took < 1.0, f"/readyz took {took:.2f} s during the burst"


@pytest.fixture
async def tiny_pool(
    monkeypatch: pytest.MonkeyPatch, database_url: str
) -> AsyncIterator[httpx.AsyncClient]:
    """An app whose pool has one connection, given up after 0.2 s of waiting."""
    from app.main import create_app
    from tests.conftest import _truncate

    monkeypatch.setenv("DATABASE_POOL_SIZE", "1")
    monkeypatch.setenv("DATABASE_MAX_OVERFLOW", "0")
    monkeypatch.setenv("DATABASE_POOL_TIMEOUT_SECONDS", "0.2")
    monkeypatch.setenv("EVENTS_RELAY_ENABLED", "false")
    reset_settings()
    settings: Settings = get_settings()
    application: FastAPI = create_app(settings)
    try:
        async with application.router.lifespan_context(application):
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                yield http
            await _truncate(get_database())
    finally:
        reset_settings()


async def test_an_exhausted_pool_answers_503_database_busy_with_retry_after(
    tiny_pool: httpx.AsyncClient,
) -> None:
    pool = get_database().engine.pool
    assert isinstance(pool, QueuePool)
    assert pool.size() == 1  # DATABASE_POOL_SIZE, on SQLite too
    async with get_database().engine.connect():  # the only connection is taken
        response = await login(tiny_pool, "someone@example.com", PASSWORD)
    assert response.status_code == 503, response.text
    assert problem_code(response) == "database_busy"
    assert int(response.headers["retry-after"]) >= 1
    # Once a connection is free again, the same request is answered.
    assert (await login(tiny_pool, "someone@example.com", PASSWORD)).status_code == 401


async def test_a_login_needs_only_one_connection_at_a_time(tiny_pool: httpx.AsyncClient) -> None:
    # With a pool of one, a login that held a connection while waiting for another would
    # time out (503); every attempt, throttled or not, is answered on one connection.
    codes = [
        (await login(tiny_pool, "one@example.com", f"wrong-{n}")).status_code for n in range(7)
    ]
    assert codes == [401] * 5 + [429] * 2, codes


async def test_own_transaction_refuses_to_wait_for_a_second_connection(
    app: FastAPI,
) -> None:
    async with session_scope() as session:
        await session.connection()  # this scope now holds a connection
        with pytest.raises(RuntimeError, match="holds a connection"):
            async with own_transaction():
                pass
    async with session_scope(), own_transaction() as own:  # before any use: allowed
        assert own.in_transaction() is False

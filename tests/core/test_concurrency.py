"""One database file carries the relay, a burst of durable deliveries and requests at once.

On SQLite a transaction that may write takes the write lock when it begins (``BEGIN IMMEDIATE``)
and writers of one process queue for it; a transaction that began deferred, read, and then
wrote after another connection had written would fail at once with "database is locked".
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from app.contracts.hr import WorkerProfile, WorkerProfileSynced
from app.contracts.user import UserProfileSyncRequested
from app.core.db import Database, session_scope
from app.core.settings import get_settings, reset_settings
from app.events import publish
from tests.events.outbox_support import (
    ORG,
    PROBE_LISTENER,
    ProbeEmitted,
    create_probe_table,
    drop_probe_table,
    probe_rows,
    until,
)
from tests.factories import create_org, logged_in_user

EVENTS = 200
TRANSACTIONS = 20
REQUESTS = 40


@pytest.fixture
async def busy_app(monkeypatch: pytest.MonkeyPatch, database_url: str) -> AsyncIterator[FastAPI]:
    """The app with the outbox probe listener and a relay at full concurrency."""
    from app.main import create_app
    from tests.conftest import _truncate

    monkeypatch.setenv("EVENTS_EXTRA_LISTENERS", "tests.events.outbox_support:listeners")
    monkeypatch.setenv("EVENTS_RELAY_CONCURRENCY", "16")
    monkeypatch.setenv("EVENTS_RELAY_POLL_MIN_SECONDS", "0.01")
    monkeypatch.setenv("EVENTS_RELAY_POLL_MAX_SECONDS", "0.05")
    monkeypatch.setenv("OUTBOX_PROBE_DELAY_MS", "5")
    reset_settings()
    application = create_app(get_settings())
    try:
        async with application.router.lifespan_context(application):
            database: Database = application.state.database
            await create_probe_table(database)
            try:
                yield application
            finally:
                await drop_probe_table(database)
                await _truncate(database)
    finally:
        reset_settings()


async def test_relay_deliveries_and_requests_share_one_database_without_locking_errors(
    busy_app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    database: Database = busy_app.state.database
    transport = httpx.ASGITransport(app=busy_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        org = await create_org()
        admin = await logged_in_user(client, org, role="admin", email="admin@example.com")
        people = [
            await logged_in_user(client, org, person_number=f"9{n:05d}", oracle_username=f"P{n}")
            for n in range(4)
        ]

        async def hcm(event: UserProfileSyncRequested) -> None:
            await asyncio.sleep(0.01)  # the HCM call, while the request's transaction is open
            await publish(
                WorkerProfileSynced(
                    organization_id=event.organization_id,
                    user_id=event.user_id,
                    profile=WorkerProfile(job="Buyer", department=f"D{event.user_id.hex[:4]}"),
                )
            )

        # The stand-in replaces the hr module's listener: no HCM to call here.
        busy_app.state.emitter.remove_all_listeners(UserProfileSyncRequested)
        busy_app.state.emitter.on(UserProfileSyncRequested, hcm)

        async def emit_burst(first: int) -> None:
            async with session_scope():
                for n in range(first, EVENTS, TRANSACTIONS):
                    await publish(ProbeEmitted(organization_id=ORG, n=n))

        async def request(n: int) -> httpx.Response:
            person = people[n % len(people)]
            if n % 4 == 0:  # the profile pipeline: listeners in savepoints read, then write
                return await client.put("/api/v1/users/me/sync-profile", headers=person.headers)
            if n % 4 == 1:
                return await client.patch(
                    f"/api/v1/users/{person.user_id}",
                    json={"first_name": f"Name{n}"},
                    headers=admin.headers,
                )
            if n % 4 == 2:
                return await client.get("/api/v1/users/me", headers=person.headers)
            return await client.post(
                "/api/v1/auth/refresh", json={"refresh_token": person.refresh_token}
            )

        bursts = [emit_burst(first) for first in range(TRANSACTIONS)]
        results = await asyncio.gather(*bursts, *(request(n) for n in range(REQUESTS)))
    responses = [r for r in results if isinstance(r, httpx.Response)]
    assert len(responses) == REQUESTS
    for response in responses:  # a refresh token works once: the others are 401, never 5xx
        assert response.status_code < 500, response.text
    await until(lambda: _all_done(database), timeout=60, what="every delivery done")
    rows = await probe_rows(database)
    assert sorted(n for _, n in rows) == list(range(EVENTS))  # each write once, none lost
    locked = [r.getMessage() for r in caplog.records if "database is locked" in r.getMessage()]
    assert locked == []


async def _all_done(database: Database) -> bool:
    # The probe's deliveries; the profile pipeline adds others (the inboxes' task syncs).
    async with database.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT status, count(*) FROM outbox_deliveries"
                " WHERE listener_id = :listener GROUP BY status"
            ),
            {"listener": PROBE_LISTENER},
        )
        return {row[0]: row[1] for row in rows} == {"done": EVENTS}

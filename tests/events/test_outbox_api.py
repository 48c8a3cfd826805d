"""Admin REST routes of the outbox: list, inspect, retry and discard, scoped to the tenant."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from app.core.db import session_scope
from app.events import DoNotRetry, listener
from app.events.outbox import service
from app.events.outbox.models import DeliveryStatus, OutboxDelivery
from tests import factories
from tests.events.outbox_support import ProbeEmitted
from tests.factories import Account, create_org, problem_code, settle

admin = factories.admin
employee = factories.employee
org = factories.org

DELIVERIES = "/api/v1/admin/events/deliveries"
REPLAY = "/api/v1/admin/events/replay"
refused: set[int] = set()


@listener(ProbeEmitted, delivery="durable", listener_id="tests.api.picky")
async def picky(event: ProbeEmitted) -> None:
    """Refuse each order once, then accept it."""
    if event.n not in refused:
        refused.add(event.n)
        raise DoNotRetry(f"order {event.n} is not ready")


async def _dead_letters(app: FastAPI, *organizations: uuid.UUID) -> None:
    refused.clear()
    emitter = app.state.emitter
    emitter.register(picky, module="tests")
    for n, organization in enumerate(organizations):
        await emitter.emit_async(ProbeEmitted(organization_id=organization, n=n))
    await settle(app)


async def test_an_admin_lists_inspects_retries_and_discards_dead_letters(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    other = await create_org()
    await _dead_letters(app, admin.organization_id, other)
    listed = await client.get(DELIVERIES, params={"status": "dead"}, headers=admin.headers)
    assert listed.status_code == 200, listed.text
    page = listed.json()
    assert (page["total"], page["limit"], page["offset"]) == (1, 50, 0)  # not the other tenant's
    [item] = page["items"]
    assert item["organization_id"] == str(admin.organization_id)
    assert (item["status"], item["attempts"], item["max_attempts"]) == ("dead", 1, 8)
    assert item["last_error"] == "app.events.outbox.errors.DoNotRetry: order 0 is not ready"
    assert item["idempotency_key"] == f"{item['event_id']}:tests.api.picky"

    detail = await client.get(f"{DELIVERIES}/{item['id']}", headers=admin.headers)
    assert detail.status_code == 200
    body = detail.json()
    assert body["payload"]["n"] == 0
    [error] = body["errors"]
    assert (error["attempt"], error["type"]) == (1, "app.events.outbox.errors.DoNotRetry")
    assert "raise DoNotRetry" in error["traceback"]

    retried = await client.post(f"{DELIVERIES}/{item['id']}/retry", headers=admin.headers)
    assert retried.status_code == 200
    assert (retried.json()["status"], retried.json()["attempts"]) == ("pending", 0)
    await settle(app)
    done = (await client.get(f"{DELIVERIES}/{item['id']}", headers=admin.headers)).json()
    assert (done["status"], done["attempts"], len(done["errors"])) == ("done", 1, 1)

    refused_discard = await client.post(f"{DELIVERIES}/{item['id']}/discard", headers=admin.headers)
    assert refused_discard.status_code == 409
    assert problem_code(refused_discard) == "delivery_not_discardable"

    pending_page = await client.get(DELIVERIES, params={"status": "done"}, headers=admin.headers)
    assert pending_page.json()["total"] == 1


async def test_another_tenants_delivery_is_not_found_and_discard_works(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    other = await create_org()
    await _dead_letters(app, other, admin.organization_id)
    everything = await client.get(DELIVERIES, params={"limit": 200}, headers=admin.headers)
    [mine] = everything.json()["items"]
    foreign_id = mine["id"] - 1 if mine["id"] > 1 else mine["id"] + 1
    for method, path in (
        ("GET", f"{DELIVERIES}/{foreign_id}"),
        ("POST", f"{DELIVERIES}/{foreign_id}/retry"),
        ("POST", f"{DELIVERIES}/{foreign_id}/discard"),
        ("GET", f"{DELIVERIES}/987654"),
    ):
        response = await client.request(method, path, headers=admin.headers)
        assert response.status_code == 404, (method, path)
        assert problem_code(response) == "delivery_not_found"
    discarded = await client.post(f"{DELIVERIES}/{mine['id']}/discard", headers=admin.headers)
    assert discarded.status_code == 200
    assert discarded.json()["status"] == "discarded"


async def test_only_admins_see_deliveries(
    client: httpx.AsyncClient, employee: Account, org: uuid.UUID
) -> None:
    assert (await client.get(DELIVERIES)).status_code == 401
    forbidden = await client.get(DELIVERIES, headers=employee.headers)
    assert forbidden.status_code == 403
    bad_status = await client.get(DELIVERIES, params={"status": "lost"}, headers=employee.headers)
    assert bad_status.status_code in (403, 422)


async def test_huge_ids_and_offsets_are_422_not_500(
    client: httpx.AsyncClient, admin: Account
) -> None:
    huge = 10**20
    for method, path, params in (
        ("GET", f"{DELIVERIES}/{huge}", {}),
        ("GET", f"{DELIVERIES}/{2**63}", {}),
        ("GET", f"{DELIVERIES}/0", {}),
        ("POST", f"{DELIVERIES}/{huge}/retry", {}),
        ("POST", f"{DELIVERIES}/{huge}/discard", {}),
        ("GET", DELIVERIES, {"offset": huge}),
        ("GET", DELIVERIES, {"limit": huge}),
    ):
        response = await client.request(method, path, params=params, headers=admin.headers)
        assert response.status_code == 422, (method, path, params, response.text)
        assert problem_code(response) == "validation_error"
        assert response.headers["content-type"] == "application/problem+json"
    largest_id = await client.get(f"{DELIVERIES}/{2**63 - 1}", headers=admin.headers)
    assert largest_id.status_code == 404
    assert problem_code(largest_id) == "delivery_not_found"
    largest_offset = await client.get(
        DELIVERIES, params={"offset": 2**63 - 1}, headers=admin.headers
    )
    assert largest_offset.status_code == 200, largest_offset.text
    assert largest_offset.json()["items"] == []


async def test_a_retry_or_discard_that_loses_a_race_answers_409(
    app: FastAPI,
    client: httpx.AsyncClient,
    admin: Account,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await _dead_letters(app, admin.organization_id)
    [dead] = (await client.get(DELIVERIES, headers=admin.headers)).json()["items"]
    read_row = service._row
    meanwhile: list[DeliveryStatus] = []

    async def row_then_concurrent_change(*args: Any) -> Any:
        """Read the row, then let "another relay or admin" change its state before the update."""
        row = await read_row(*args)
        if not meanwhile:  # the read after the update
            return row
        async with session_scope(join=False) as other:
            await other.execute(
                update(OutboxDelivery)
                .where(OutboxDelivery.id == dead["id"])
                .values(status=meanwhile.pop(0).value)
            )
        return row

    monkeypatch.setattr(service, "_row", row_then_concurrent_change)
    for action, change in (("retry", DeliveryStatus.DONE), ("discard", DeliveryStatus.PENDING)):
        async with session_scope() as session:
            await session.execute(
                update(OutboxDelivery)
                .where(OutboxDelivery.id == dead["id"])
                .values(status=DeliveryStatus.DEAD.value)
            )
        meanwhile.append(change)
        lost = await client.post(f"{DELIVERIES}/{dead['id']}/{action}", headers=admin.headers)
        assert lost.status_code == 409, (action, lost.text)
        assert problem_code(lost) == "delivery_state_changed"
        async with session_scope() as session:
            stored = await session.get(OutboxDelivery, dead["id"])
            assert stored is not None
            assert stored.status == change.value  # the concurrent change stands


backfilled: list[tuple[uuid.UUID, int]] = []


@listener(ProbeEmitted, delivery="durable", listener_id="tests.api.backfill")
async def backfill(event: ProbeEmitted) -> None:
    backfilled.append((event.organization_id, event.n))


async def test_an_admin_replays_the_organisations_history_to_a_new_listener(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    other = await create_org()
    await _dead_letters(app, admin.organization_id, other)  # the history: one event per tenant
    backfilled.clear()
    app.state.emitter.register(backfill, module="tests")
    # The relay waits while the replays are asked for, so the first one's delivery is still
    # open when the second comes (a relay that delivered it first would make it history again).
    relay = app.state.relay
    await relay.stop()
    body = {
        "pattern": "test.outbox.*",
        "listener_id": "tests.api.backfill",
        "since": "2000-01-01T00:00:00Z",
    }
    replayed = await client.post(REPLAY, json=body, headers=admin.headers)
    assert replayed.status_code == 202, replayed.text
    assert replayed.json() == {
        "listener_id": "tests.api.backfill",
        "event_names": ["test.outbox.probe"],
        "queued": 1,  # not the other tenant's event
    }
    again = await client.post(REPLAY, json=body, headers=admin.headers)
    assert again.json()["queued"] == 0  # its delivery is still open: nothing doubles
    to_dead = await client.post(
        REPLAY, json={**body, "listener_id": "tests.api.picky"}, headers=admin.headers
    )
    assert to_dead.json()["queued"] == 0  # a dead letter is retried, not replayed twice
    await relay.start()
    await settle(app)
    assert backfilled == [(admin.organization_id, 0)]
    window = {**body, "since": "2999-01-01T00:00:00Z"}
    assert (await client.post(REPLAY, json=window, headers=admin.headers)).json()["queued"] == 0
    widest = {**body, "since": "0001-01-01T00:00:00Z", "until": "9999-12-31T23:59:59.999Z"}
    everything = await client.post(REPLAY, json=widest, headers=admin.headers)
    assert everything.status_code == 202, everything.text  # clamped, not a 500
    assert everything.json()["queued"] == 1


async def test_a_malformed_replay_is_refused_and_queues_nothing(
    app: FastAPI, client: httpx.AsyncClient, admin: Account, employee: Account
) -> None:
    await _dead_letters(app, admin.organization_id)
    good = {
        "pattern": "test.outbox.*",
        "listener_id": "tests.api.picky",
        "since": "2000-01-01T00:00:00Z",
    }
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({**good, "listener_id": "tests.nobody"}, 422, "unknown_listener"),
        ({**good, "pattern": "test.*x*"}, 422, "invalid_pattern"),
        ({**good, "since": "2026-01-01T00:00:00"}, 422, "validation_error"),  # no time zone
        ({**good, "since": "yesterday"}, 422, "validation_error"),
        ({**good, "since": "0001-01-01T00:00:00+01:00"}, 422, "validation_error"),  # before UTC 1
        ({**good, "until": "9999-12-31T23:00:00-02:00"}, 422, "validation_error"),  # after 9999
        ({**good, "until": "1999-01-01T00:00:00Z"}, 422, "validation_error"),
        ({**good, "extra": 1}, 422, "validation_error"),
        (
            {"pattern": "", "listener_id": "tests.api.picky", "since": good["since"]},
            422,
            "validation_error",
        ),
    ]
    for payload, status, code in cases:
        response = await client.post(REPLAY, json=payload, headers=admin.headers)
        assert response.status_code == status, (payload, response.text)
        assert problem_code(response) == code, payload
    assert (await client.post(REPLAY, json=good)).status_code == 401
    assert (await client.post(REPLAY, json=good, headers=employee.headers)).status_code == 403
    async with session_scope() as session:
        page = await service.list_deliveries(session, status=DeliveryStatus.PENDING)
    assert page.total == 0

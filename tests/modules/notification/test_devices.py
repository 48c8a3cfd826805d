"""Push devices through the REST API: login, POST/GET/DELETE /devices, topics at the sandbox,
logout and deletion, and bad input."""

from __future__ import annotations

import uuid

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from app.core.db import session_scope
from app.modules.notification.models import Device
from tests.factories import Account, create_user, log_in, problem_code
from tests.integrations.conftest import RunningSandbox
from tests.modules.notification.conftest import Time, deliver, device_token, topics


async def test_a_device_sent_with_login_is_registered_and_subscribed_to_its_organisation(
    app: FastAPI, client: httpx.AsyncClient, org: uuid.UUID, fcm: RunningSandbox, now: Time
) -> None:
    token = device_token(1)
    user = await log_in(
        client,
        await create_user(org),
        device={"token": token, "platform": "android", "name": "Pixel 9"},
    )
    response = await client.get("/api/v1/devices", headers=user.headers)
    assert response.status_code == 200
    page = response.json()
    assert page["total"] == 1
    (device,) = page["items"]
    assert (device["token"], device["platform"], device["name"], device["is_active"]) == (
        token,
        "android",
        "Pixel 9",
        True,
    )
    assert await topics(fcm, token) == []  # subscribed by a durable delivery, not the login
    await deliver(app, now)
    assert await topics(fcm, token) == [f"org-{org}"]


async def test_logout_deactivates_the_device_and_unsubscribes_its_topics(
    app: FastAPI, client: httpx.AsyncClient, org: uuid.UUID, fcm: RunningSandbox, now: Time
) -> None:
    token = device_token(2)
    user = await log_in(client, await create_user(org), device={"token": token, "platform": "ios"})
    await deliver(app, now)
    assert await topics(fcm, token) == [f"org-{org}"]
    assert (await client.post("/api/v1/auth/logout", headers=user.headers)).status_code == 204
    again = await log_in(client, user)  # a new session without a device
    assert (await client.get("/api/v1/devices", headers=again.headers)).json()["total"] == 0
    await deliver(app, now)
    assert await topics(fcm, token) == []
    async with session_scope() as session:
        device = (await session.scalars(select(Device))).one()
    assert device.deactivated_reason == "logout"


async def test_post_devices_registers_and_a_token_belongs_to_one_user_at_a_time(
    app: FastAPI, client: httpx.AsyncClient, org: uuid.UUID, fcm: RunningSandbox, now: Time
) -> None:
    first = await log_in(client, await create_user(org))
    second = await log_in(client, await create_user(org))
    token = device_token(3)
    response = await client.post(
        "/api/v1/devices", headers=first.headers, json={"token": token, "platform": "web"}
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert (created["is_active"], created["name"]) == (True, None)
    await deliver(app, now)
    assert await topics(fcm, token) == [f"org-{org}"]

    moved = await client.post(
        "/api/v1/devices",
        headers=second.headers,
        json={"token": token, "platform": "android", "name": "Shared tablet"},
    )
    assert moved.status_code == 201
    assert moved.json()["id"] == created["id"]
    assert (await client.get("/api/v1/devices", headers=first.headers)).json()["items"] == []
    (mine,) = (await client.get("/api/v1/devices", headers=second.headers)).json()["items"]
    assert (mine["token"], mine["platform"], mine["name"]) == (token, "android", "Shared tablet")
    await deliver(app, now)
    assert await topics(fcm, token) == [f"org-{org}"]


async def test_a_token_moving_to_another_organisation_changes_its_broadcast_topic(
    app: FastAPI, client: httpx.AsyncClient, org: uuid.UUID, fcm: RunningSandbox, now: Time
) -> None:
    from tests.factories import create_org

    other_org = await create_org()
    token = device_token(4)
    await log_in(client, await create_user(org), device={"token": token, "platform": "ios"})
    await deliver(app, now)
    await log_in(client, await create_user(other_org), device={"token": token, "platform": "ios"})
    await deliver(app, now)
    assert await topics(fcm, token) == [f"org-{other_org}"]


async def test_delete_removes_my_device_and_another_users_device_is_not_found(
    app: FastAPI, client: httpx.AsyncClient, org: uuid.UUID, fcm: RunningSandbox, now: Time
) -> None:
    me = await log_in(client, await create_user(org))
    someone = await log_in(client, await create_user(org))
    token = device_token(5)
    mine = (
        await client.post(
            "/api/v1/devices", headers=me.headers, json={"token": token, "platform": "ios"}
        )
    ).json()
    await deliver(app, now)

    response = await client.delete(f"/api/v1/devices/{mine['id']}", headers=someone.headers)
    assert response.status_code == 404
    assert problem_code(response) == "device_not_found"
    unknown = await client.delete(f"/api/v1/devices/{uuid.uuid4()}", headers=me.headers)
    assert unknown.status_code == 404

    assert (
        await client.delete(f"/api/v1/devices/{mine['id']}", headers=me.headers)
    ).status_code == 204
    assert (await client.get("/api/v1/devices", headers=me.headers)).json()["total"] == 0
    again = await client.delete(f"/api/v1/devices/{mine['id']}", headers=me.headers)
    assert again.status_code == 404
    await deliver(app, now)
    assert await topics(fcm, token) == []


async def test_deleting_a_user_deactivates_all_their_devices(
    app: FastAPI,
    client: httpx.AsyncClient,
    org: uuid.UUID,
    admin: Account,
    fcm: RunningSandbox,
    now: Time,
) -> None:
    user = await log_in(client, await create_user(org))
    tokens = [device_token(6), device_token(7)]
    for token in tokens:
        await client.post(
            "/api/v1/devices", headers=user.headers, json={"token": token, "platform": "android"}
        )
    await deliver(app, now)
    assert [await topics(fcm, t) for t in tokens] == [[f"org-{org}"], [f"org-{org}"]]
    response = await client.delete(f"/api/v1/users/{user.user_id}", headers=admin.headers)
    assert response.status_code == 204
    await deliver(app, now)
    assert [await topics(fcm, t) for t in tokens] == [[], []]
    async with session_scope() as session:
        rows = (await session.scalars(select(Device))).all()
    assert {(r.is_active, r.deactivated_reason) for r in rows} == {(False, "user_deleted")}


async def test_a_token_fcm_calls_unregistered_is_deactivated_when_subscribing(
    app: FastAPI, client: httpx.AsyncClient, employee: Account, fcm: RunningSandbox, now: Time
) -> None:
    token = f"unregistered-{uuid.uuid4().hex}"
    await client.post(
        "/api/v1/devices", headers=employee.headers, json={"token": token, "platform": "android"}
    )
    await deliver(app, now)
    assert (await client.get("/api/v1/devices", headers=employee.headers)).json()["total"] == 0


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        pytest.param({"token": "t" * 4097, "platform": "ios"}, ["body", "token"], id="long-token"),
        pytest.param({"token": "", "platform": "ios"}, ["body", "token"], id="empty-token"),
        pytest.param({"token": "a b", "platform": "ios"}, ["body", "token"], id="blank-in-token"),
        pytest.param({"token": "abc", "platform": "symbian"}, ["body", "platform"], id="platform"),
        pytest.param({"platform": "ios"}, ["body", "token"], id="missing-token"),
        pytest.param(
            {"token": "abc", "platform": "ios", "x": 1}, ["body", "x"], id="unknown-field"
        ),
        pytest.param(
            {"token": "abc", "platform": "ios", "name": "n" * 201}, ["body", "name"], id="long-name"
        ),
    ],
)
async def test_bad_devices_are_refused_with_422(
    client: httpx.AsyncClient, employee: Account, body: dict[str, object], loc: list[str]
) -> None:
    response = await client.post("/api/v1/devices", headers=employee.headers, json=body)
    assert response.status_code == 422
    assert problem_code(response) == "validation_error"
    assert loc in [e["loc"] for e in response.json()["errors"]]


async def test_devices_need_a_login(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/v1/devices")).status_code == 401
    response = await client.post("/api/v1/devices", json={"token": "abc", "platform": "ios"})
    assert response.status_code == 401


async def test_logging_out_an_older_session_leaves_a_device_a_newer_login_registered_again(
    app: FastAPI, client: httpx.AsyncClient, org: uuid.UUID, fcm: RunningSandbox, now: Time
) -> None:
    token = device_token(8)
    account = await create_user(org)
    device = {"token": token, "platform": "android"}
    older = await log_in(client, account, device=device)
    newer = await log_in(client, account, device=device)  # the app logged in again
    await deliver(app, now)
    assert (await client.post("/api/v1/auth/logout", headers=older.headers)).status_code == 204
    await deliver(app, now)
    devices = (await client.get("/api/v1/devices", headers=newer.headers)).json()["items"]
    assert [d["token"] for d in devices] == [token]
    assert await topics(fcm, token) == [f"org-{org}"]
    assert (await client.post("/api/v1/auth/logout", headers=newer.headers)).status_code == 204
    await deliver(app, now)
    assert await topics(fcm, token) == []

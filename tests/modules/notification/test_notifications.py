"""Notifications through the REST API, fed by the inbox's events, pushed to the sandbox's FCM."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from app.core.db import session_scope
from app.events.outbox.models import OutboxDelivery
from app.modules.notification.models import Notification, Push, TaskClosure
from app.sandbox import Fault
from tests.dbutil import watch_database
from tests.factories import Account, create_user, log_in, problem_code
from tests.integrations.conftest import RunningSandbox
from tests.modules.notification.conftest import (
    Time,
    close,
    deliver,
    device_token,
    pushes,
    receive,
)

WINDOW = 30


async def push_window(app: FastAPI, now: Time) -> None:
    """Store what arrived, let the summary window close, and send what is due."""
    await deliver(app, now)
    now.advance(WINDOW)
    await deliver(app, now)


async def _with_device(client: httpx.AsyncClient, org: uuid.UUID, token: str) -> Account:
    return await log_in(
        client, await create_user(org), device={"token": token, "platform": "android"}
    )


async def _stored(user: Account) -> int:
    async with session_scope() as session:
        query = (
            select(func.count())
            .select_from(Notification)
            .where(Notification.user_id == user.user_id)
        )
        return int(await session.scalar(query) or 0)


async def test_a_sync_with_three_new_tasks_stores_three_and_pushes_one_summary(
    app: FastAPI, client: httpx.AsyncClient, org: uuid.UUID, fcm: RunningSandbox, now: Time
) -> None:
    token = device_token(1)
    user = await _with_device(client, org, token)
    sync = uuid.uuid4()
    tasks = [("procurement", "300100"), ("procurement", "300101"), ("leasing", "L-7")]
    await receive(user, *tasks, sync_id=sync)
    await deliver(app, now)
    page = (await client.get("/api/v1/notifications", headers=user.headers)).json()
    assert page["total"] == 3
    assert {(n["module"], n["task_id"]) for n in page["items"]} == set(tasks)
    assert await pushes(fcm, token) == []  # the summary window is open

    await push_window(app, now)
    (push,) = await pushes(fcm, token)
    assert push["title"] == "3 new approvals"
    assert push["body"] == "2 procurement, 1 leasing"
    assert push["data"]["kind"] == "summary"
    assert push["data"]["count"] == "3"
    collapse = push["android"]["collapse_key"]
    assert push["android"]["notification"]["tag"] == collapse
    assert push["apns"]["headers"]["apns-collapse-id"] == collapse
    assert push["data"]["idempotency_key"]

    # The next sync finds the same three tasks: nothing is stored or pushed again.
    await receive(user, *tasks, sync_id=uuid.uuid4())
    await push_window(app, now)
    assert await _stored(user) == 3
    assert len(await pushes(fcm, token)) == 1


async def test_one_task_is_pushed_to_every_active_device_with_its_own_text(
    app: FastAPI, client: httpx.AsyncClient, org: uuid.UUID, fcm: RunningSandbox, now: Time
) -> None:
    tokens = [device_token(n) for n in range(3)]
    user = await _with_device(client, org, tokens[0])
    for token in tokens[1:]:
        await client.post(
            "/api/v1/devices", headers=user.headers, json={"token": token, "platform": "ios"}
        )
    await receive(user, ("hr", "HR-1"), title="Leave request", summary="Ann, 3 days")
    await push_window(app, now)
    sent = await pushes(fcm)
    assert sorted(p["token"] for p in sent) == sorted(tokens)
    assert {(p["title"], p["body"], p["data"]["kind"], p["data"]["task_id"]) for p in sent} == {
        ("Leave request", "Ann, 3 days", "task", "HR-1")
    }
    assert len({p["data"]["idempotency_key"] for p in sent}) == 1


async def test_an_unregistered_token_is_deactivated_and_never_sent_to_again(
    app: FastAPI, client: httpx.AsyncClient, org: uuid.UUID, fcm: RunningSandbox, now: Time
) -> None:
    alive, dead = device_token(1), device_token(2)
    user = await _with_device(client, org, alive)
    await client.post(
        "/api/v1/devices", headers=user.headers, json={"token": dead, "platform": "ios"}
    )
    await deliver(app, now)
    fcm.state.fcm.unregistered.add(dead)  # the app was uninstalled

    await receive(user, ("procurement", "1"))
    await push_window(app, now)
    assert [p["token"] for p in await pushes(fcm)] == [alive]
    devices = (await client.get("/api/v1/devices", headers=user.headers)).json()["items"]
    assert [d["token"] for d in devices] == [alive]

    requests_before = fcm.state.traffic["fcm"].requests
    await receive(user, ("procurement", "2"))
    await push_window(app, now)
    assert [p["token"] for p in await pushes(fcm)] == [alive, alive]
    assert fcm.state.traffic["fcm"].requests == requests_before + 1


async def _deliveries_of(listener_id: str) -> list[OutboxDelivery]:
    async with session_scope() as session:
        query = select(OutboxDelivery).where(OutboxDelivery.listener_id == listener_id)
        return list((await session.scalars(query.order_by(OutboxDelivery.id))).all())


async def test_devices_fcm_failed_for_a_while_get_the_same_push_again_and_only_they(
    app: FastAPI, client: httpx.AsyncClient, org: uuid.UUID, fcm: RunningSandbox, now: Time
) -> None:
    ok, brief, busy, dead = (device_token(n) for n in range(4))
    user = await _with_device(client, org, ok)
    for token in (brief, busy, dead):
        await client.post(
            "/api/v1/devices", headers=user.headers, json={"token": token, "platform": "ios"}
        )
    await deliver(app, now)
    fcm.state.fcm.unregistered.add(dead)
    async with httpx.AsyncClient() as http:  # FCM refuses some tokens' next messages
        for token, times in ((brief, 1), (busy, 3)):
            forced = await http.post(
                f"{fcm.url}/faults",
                json={"system": "fcm", "status": 429, "token": token, "times": times},
            )
            assert forced.status_code == 201, forced.text

    await receive(user, ("procurement", "P-1"), title="Requisition 42")
    await push_window(app, now)
    (first,) = await pushes(fcm)
    assert first["token"] == ok
    devices = (await client.get("/api/v1/devices", headers=user.headers)).json()["items"]
    assert sorted(d["token"] for d in devices) == sorted([ok, brief, busy])  # dead: deactivated
    (round_1,) = await _deliveries_of("notification.push.resend")
    assert (round_1.status, round_1.attempts) == ("pending", 0)
    assert 0 < (round_1.available_at - now()).total_seconds() <= 2  # the first round's backoff

    now.set(round_1.available_at)
    await deliver(app, now)  # brief gets it; busy fails again: a second round, for busy alone
    assert [p["token"] for p in await pushes(fcm)] == [brief, ok]
    round_1, round_2 = await _deliveries_of("notification.push.resend")
    assert (round_1.status, round_1.attempts) == ("done", 1)
    assert (round_2.status, round_2.attempts) == ("pending", 0)
    assert 0 < (round_2.available_at - now()).total_seconds() <= 4

    now.set(round_2.available_at)
    await deliver(app, now)  # busy fails once more, alone: the delivery itself retries
    _, round_2 = await _deliveries_of("notification.push.resend")
    assert (round_2.status, round_2.attempts) == ("pending", 1)
    assert "QUOTA_EXCEEDED" in (round_2.last_error or "")
    assert len(await pushes(fcm)) == 2

    now.set(round_2.available_at)
    await deliver(app, now)
    sent = await pushes(fcm)
    assert [p["token"] for p in sent] == [busy, brief, ok]  # each device got it once
    same = ("title", "body", "data", "android", "apns")
    assert all({k: p[k] for k in same} == {k: first[k] for k in same} for p in sent)
    async with session_scope() as session:
        push = (await session.scalars(select(Push))).one()
    assert (push.status, push.devices, push.delivered) == ("sent", 4, 3)
    assert [(d.status, d.attempts) for d in await _deliveries_of("notification.push.resend")] == [
        ("done", 1),
        ("done", 2),
    ]
    now.advance(3600)
    assert await deliver(app, now) == 0  # nothing else is sent, ever
    assert len(await pushes(fcm)) == 3


async def test_tasks_arriving_after_a_push_went_out_get_a_push_of_their_own(
    app: FastAPI, client: httpx.AsyncClient, org: uuid.UUID, fcm: RunningSandbox, now: Time
) -> None:
    token = device_token(1)
    user = await _with_device(client, org, token)
    await receive(user, ("procurement", "1"))
    await deliver(app, now)
    now.advance(10)
    await receive(user, ("hr", "2"))  # within the window: joins the same push
    await deliver(app, now)
    now.advance(WINDOW - 10)
    await deliver(app, now)
    await receive(user, ("leasing", "3"))
    await push_window(app, now)
    sent = await pushes(fcm, token)
    assert [p["title"] for p in sent] == ["Leasing task 3", "2 new approvals"]
    assert sent[0]["android"]["collapse_key"] != sent[1]["android"]["collapse_key"]


async def test_a_closed_task_resolves_its_notification_and_leaves_the_badge(
    app: FastAPI, client: httpx.AsyncClient, org: uuid.UUID, fcm: RunningSandbox, now: Time
) -> None:
    token = device_token(1)
    user = await _with_device(client, org, token)
    await receive(user, ("procurement", "1"), ("procurement", "2"))
    await deliver(app, now)
    count = await client.get("/api/v1/notifications/unread-count", headers=user.headers)
    assert count.json() == {"count": 2}

    await close(user, "procurement", "2")  # decided elsewhere before the push went out
    await push_window(app, now)
    count = await client.get("/api/v1/notifications/unread-count", headers=user.headers)
    assert count.json() == {"count": 1}
    items = (await client.get("/api/v1/notifications", headers=user.headers)).json()["items"]
    resolved = {n["task_id"]: n["resolved_at"] is not None for n in items}
    assert resolved == {"1": False, "2": True}
    unread = (await client.get("/api/v1/notifications?unread=true", headers=user.headers)).json()
    assert [n["task_id"] for n in unread["items"]] == ["1"]
    (push,) = await pushes(fcm, token)
    assert (push["title"], push["data"]["task_id"]) == ("Procurement task 1", "1")


async def test_a_close_delivered_before_its_receive_leaves_the_notification_resolved(
    app: FastAPI, client: httpx.AsyncClient, org: uuid.UUID, fcm: RunningSandbox, now: Time
) -> None:
    token = device_token(1)
    user = await _with_device(client, org, token)
    await deliver(app, now)
    # The receive's delivery is late (retrying, or behind a backlog): the close runs first.
    await close(user, "leasing", "L-9")
    await deliver(app, now)
    await receive(user, ("leasing", "L-9"), ("leasing", "L-10"))
    await push_window(app, now)
    items = (await client.get("/api/v1/notifications", headers=user.headers)).json()["items"]
    assert {n["task_id"]: n["resolved_at"] is not None for n in items} == {
        "L-9": True,
        "L-10": False,
    }
    count = await client.get("/api/v1/notifications/unread-count", headers=user.headers)
    assert count.json() == {"count": 1}
    (push,) = await pushes(fcm, token)  # the closed task is not pushed
    assert push["data"]["task_id"] == "L-10"

    # A replay of the close or of the receive changes nothing.
    await close(user, "leasing", "L-9")
    await receive(user, ("leasing", "L-9"))
    await push_window(app, now)
    assert await _stored(user) == 2
    assert len(await pushes(fcm, token)) == 1
    count = await client.get("/api/v1/notifications/unread-count", headers=user.headers)
    assert count.json() == {"count": 1}


async def test_read_one_read_all_and_paging(
    app: FastAPI, client: httpx.AsyncClient, org: uuid.UUID, now: Time
) -> None:
    user = await log_in(client, await create_user(org))
    for n in range(5):
        await receive(user, ("hr", f"T{n}"))
        await deliver(app, now)
        now.advance(1)
    first = (await client.get("/api/v1/notifications?limit=2", headers=user.headers)).json()
    assert (first["total"], first["limit"], first["offset"]) == (5, 2, 0)
    assert [n["task_id"] for n in first["items"]] == ["T4", "T3"]
    rest = (await client.get("/api/v1/notifications?limit=2&offset=2", headers=user.headers)).json()
    assert [n["task_id"] for n in rest["items"]] == ["T2", "T1"]

    target = first["items"][0]
    response = await client.post(f"/api/v1/notifications/{target['id']}/read", headers=user.headers)
    assert response.status_code == 200
    assert response.json()["read_at"] is not None
    again = await client.post(f"/api/v1/notifications/{target['id']}/read", headers=user.headers)
    assert again.json()["read_at"] == response.json()["read_at"]
    count = await client.get("/api/v1/notifications/unread-count", headers=user.headers)
    assert count.json() == {"count": 4}

    everything = await client.post("/api/v1/notifications/read-all", headers=user.headers)
    assert everything.json() == {"updated": 4}
    nothing = await client.post("/api/v1/notifications/read-all", headers=user.headers)
    assert nothing.json() == {"updated": 0}
    count = await client.get("/api/v1/notifications/unread-count", headers=user.headers)
    assert count.json() == {"count": 0}


async def test_another_users_notification_answers_404(
    app: FastAPI, client: httpx.AsyncClient, org: uuid.UUID, now: Time
) -> None:
    owner = await log_in(client, await create_user(org))
    other = await log_in(client, await create_user(org))
    await receive(owner, ("leasing", "L-1"))
    await deliver(app, now)
    (item,) = (await client.get("/api/v1/notifications", headers=owner.headers)).json()["items"]
    response = await client.post(f"/api/v1/notifications/{item['id']}/read", headers=other.headers)
    assert response.status_code == 404
    assert problem_code(response) == "notification_not_found"
    assert (await client.get("/api/v1/notifications", headers=other.headers)).json()["total"] == 0
    count = await client.get("/api/v1/notifications/unread-count", headers=other.headers)
    assert count.json() == {"count": 0}
    await client.post("/api/v1/notifications/read-all", headers=other.headers)
    count = await client.get("/api/v1/notifications/unread-count", headers=owner.headers)
    assert count.json() == {"count": 1}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/notifications?limit=0"),
        ("get", "/api/v1/notifications?limit=201"),
        ("get", "/api/v1/notifications?offset=-1"),
        ("get", "/api/v1/notifications?unread=maybe"),
        ("post", "/api/v1/notifications/not-a-uuid/read"),
        ("delete", "/api/v1/devices/not-a-uuid"),
        ("get", "/api/v1/devices?limit=0"),
    ],
)
async def test_bad_query_and_path_values_are_refused_with_422(
    client: httpx.AsyncClient, employee: Account, method: str, path: str
) -> None:
    response = await client.request(method, path, headers=employee.headers)
    assert response.status_code == 422
    assert problem_code(response) == "validation_error"


async def test_fcm_down_retries_with_backoff_then_dead_letters_and_an_admin_retry_sends_it(
    app: FastAPI,
    client: httpx.AsyncClient,
    org: uuid.UUID,
    admin: Account,
    fcm: RunningSandbox,
    now: Time,
) -> None:
    token = device_token(1)
    user = await _with_device(client, org, token)
    await deliver(app, now)
    # FCM refuses every message (firebase-admin retries 500 and 503 itself, for seconds; a
    # quota refusal reaches us at once and is retried the same way by the relay).
    fcm.state.inject("fcm", Fault(429, times=1000))
    await receive(user, ("procurement", "1"))
    await push_window(app, now)
    assert await _stored(user) == 1  # the notification is there regardless
    waits = []
    for _ in range(12):  # each retry waits longer: move the clock past it
        async with session_scope() as session:
            pending = (
                await session.scalars(
                    select(OutboxDelivery).where(OutboxDelivery.listener_id == "notification.push")
                )
            ).one()
        if pending.status == "dead":
            break
        waits.append((pending.available_at - now()).total_seconds())
        now.set(pending.available_at)
        await deliver(app, now)
    async with session_scope() as session:
        delivery = (
            await session.scalars(
                select(OutboxDelivery).where(OutboxDelivery.listener_id == "notification.push")
            )
        ).one()
    assert (delivery.status, delivery.attempts) == ("dead", 10)
    assert "QUOTA_EXCEEDED" in delivery.errors[-1]["message"]
    assert len(waits) == 9  # the window's wait spent no attempt: nine retries after the first
    assert waits == sorted(waits), waits
    assert waits[-1] > 10 * waits[0], waits
    assert await pushes(fcm, token) == []

    fcm.state.faults["fcm"].clear()
    response = await client.post(
        f"/api/v1/admin/events/deliveries/{delivery.id}/retry", headers=admin.headers
    )
    assert response.status_code in (200, 202), response.text
    await deliver(app, now)
    (push,) = await pushes(fcm, token)
    assert push["data"]["task_id"] == "1"
    async with session_scope() as session:
        sent = (await session.scalars(select(Push))).one()
    assert (sent.status, sent.delivered) == ("sent", 1)


async def test_pruning_deletes_the_organisations_notifications_past_the_retention(
    app: FastAPI, client: httpx.AsyncClient, org: uuid.UUID, now: Time
) -> None:
    from app.modules.notification.jobs import prune_notifications
    from tests.factories import create_org

    user = await log_in(client, await create_user(org))
    elsewhere = await log_in(client, await create_user(await create_org()))
    await receive(user, ("hr", "old"))
    await receive(elsewhere, ("hr", "old"))
    await close(user, "hr", "never-received")  # a closure, kept as long as a notification
    await deliver(app, now)
    now.advance(60 * 86400)
    await receive(user, ("hr", "recent"))
    await deliver(app, now)
    now.advance(31 * 86400)  # "old" is 91 days old, "recent" 31
    async with session_scope() as session:
        assert await session.scalar(select(func.count()).select_from(TaskClosure)) == 1
        assert await prune_notifications(session, organization_id=org) == 1
    items = (await client.get("/api/v1/notifications", headers=user.headers)).json()["items"]
    assert [n["task_id"] for n in items] == ["recent"]
    assert await _stored(elsewhere) == 1  # another organisation's run prunes its own
    async with session_scope() as session:
        assert await session.scalar(select(func.count()).select_from(TaskClosure)) == 0


async def test_a_notification_joining_a_push_while_it_is_sent_gets_a_push_of_its_own(
    app: FastAPI,
    client: httpx.AsyncClient,
    org: uuid.UUID,
    fcm: RunningSandbox,
    now: Time,
    is_postgres: bool,
) -> None:
    if is_postgres:
        pytest.skip("PostgreSQL locks the push row while it is sent: nothing can join it")
    from app.integrations.runtime import get_integrations
    from app.modules.notification import service

    token = device_token(1)
    user = await _with_device(client, org, token)
    await receive(user, ("procurement", "1"))
    await deliver(app, now)
    now.advance(WINDOW)
    async with session_scope() as session:
        push = (await session.scalars(select(Push))).one()
    real = get_integrations().push

    class JoinWhileSending:
        name = "join-while-sending"

        async def send_batch(self, messages: list[Any]) -> Any:
            # Another delivery stores a notification into the open push meanwhile.
            async with session_scope(join=False) as other:
                other.add(
                    Notification(
                        organization_id=org,
                        user_id=user.user_id,
                        module="hr",
                        task_id="late",
                        title="Late task",
                        push_id=push.id,
                    )
                )
            return await real.send_batch(messages)

    async with session_scope(join=False) as session:
        await service.send_due_push(
            session,
            push_id=push.id,
            gateway=JoinWhileSending(),  # type: ignore[arg-type]
            idempotency_key="k",
        )
    await deliver(app, now)
    assert [p["title"] for p in await pushes(fcm, token)] == ["Late task", "Procurement task 1"]


async def test_two_tasks_stored_at_the_same_moment_share_one_push(
    app: FastAPI, client: httpx.AsyncClient, org: uuid.UUID, fcm: RunningSandbox, now: Time
) -> None:
    import asyncio

    from app.contracts.procurement import ProcurementTaskReceived
    from app.core.settings import get_settings
    from app.modules.notification import service

    token = device_token(1)
    user = await _with_device(client, org, token)

    async def store(task_id: str) -> None:
        event = ProcurementTaskReceived(
            organization_id=org,
            user_id=user.user_id,
            task_id=task_id,
            source="oracle_fusion",
            title=f"Task {task_id}",
        )
        async with session_scope(join=False) as session:
            await service.store_task_notification(
                session, event=event, module="procurement", settings=get_settings().notifications
            )

    await asyncio.gather(store("A"), store("B"))
    async with session_scope() as session:
        (push,) = (await session.scalars(select(Push))).all()
        attached = await session.scalars(select(Notification.push_id))
        assert set(attached) == {push.id}
    await push_window(app, now)
    assert [p["title"] for p in await pushes(fcm, token)] == ["2 new approvals"]


async def test_the_badge_reads_on_one_connection_without_a_transaction(
    app: FastAPI, client: httpx.AsyncClient, org: uuid.UUID, is_postgres: bool
) -> None:
    user = await log_in(client, await create_user(org))
    await receive(user, ("hr", "T1"))
    with watch_database() as watched:
        count = await client.get("/api/v1/notifications/unread-count", headers=user.headers)
    assert count.json() == {"count": 0}  # received, not delivered yet
    assert watched.checkouts == 1  # the session check and the count share one connection
    assert len(watched.statements) == 2, watched.statements
    if is_postgres:  # autocommit: no BEGIN and no COMMIT around the two reads
        assert watched.isolation_levels == {"AUTOCOMMIT"}

    logout = await client.post("/api/v1/auth/logout", headers=user.headers)
    assert logout.status_code == 204
    revoked = await client.get("/api/v1/notifications/unread-count", headers=user.headers)
    assert revoked.status_code == 401
    assert problem_code(revoked) == "session_revoked"

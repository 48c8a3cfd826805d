"""A worker killed between the FCM call and the commit: stored once, pushed at most twice, and the
repeat carries the same idempotency key and collapse key (so the phone shows it once)."""

from __future__ import annotations

import signal
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from app.core.db import session_scope
from app.events.outbox.models import OutboxDelivery
from app.modules.notification.models import Notification, Push
from tests.events.outbox_support import start_worker, until, worker_env
from tests.factories import create_user, log_in
from tests.integrations.conftest import RunningSandbox
from tests.modules.notification.conftest import device_token, pushes, receive


async def _push_status() -> str | None:
    async with session_scope(join=False) as session:
        return await session.scalar(select(Push.status))


async def _delivery_status() -> str | None:
    async with session_scope(join=False) as session:
        query = select(OutboxDelivery.status).where(
            OutboxDelivery.listener_id == "notification.push"
        )
        return await session.scalar(query)


def _stop(worker: subprocess.Popen[str] | None) -> str:
    if worker is None:
        return ""
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
    try:
        output, _ = worker.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        worker.kill()
        output, _ = worker.communicate()
    return output or ""


@pytest.mark.slow
async def test_a_worker_killed_after_the_fcm_call_and_before_the_commit(
    app: FastAPI,
    client: httpx.AsyncClient,
    org: uuid.UUID,
    fcm: RunningSandbox,
    database_url: str,
    project_root: Path,
) -> None:
    token = device_token(1)
    user = await log_in(
        client, await create_user(org), device={"token": token, "platform": "android"}
    )
    await receive(user, ("procurement", "300100"))
    env = worker_env(
        database_url,
        EVENTS_EXTRA_LISTENERS="",
        FCM_PROVIDER="sandbox",
        FCM_SANDBOX_URL=f"{fcm.url}/fcm",
        NOTIFICATIONS_SUMMARY_WINDOW_SECONDS="0",
    )
    # FCM accepts the message, then answers only after the worker is dead.
    fcm.state.fcm.answer_delay_seconds = 30
    first = second = None
    try:
        first = start_worker(env, project_root)
        await until(lambda: len(fcm.state.fcm.sent) >= 1, 60, "FCM to accept the push")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        assert await _push_status() == "scheduled"  # the send happened, its commit did not
        assert await _delivery_status() == "running"  # held by the dead worker's lease

        fcm.state.fcm.answer_delay_seconds = 0
        second = start_worker(env, project_root)

        async def push_committed() -> bool:
            return await _push_status() == "sent"

        await until(push_committed, 60, "the restarted worker to send the push again")
        assert await _delivery_status() == "done"
    finally:
        fcm.state.fcm.answer_delay_seconds = 0
        _stop(first)
        output = _stop(second)
    sent = await pushes(fcm, token)
    assert 1 <= len(sent) <= 2, output
    assert len(sent) == 2  # this run did crash between the two
    assert len({p["data"]["idempotency_key"] for p in sent}) == 1
    assert len({p["android"]["collapse_key"] for p in sent}) == 1
    assert len({p["apns"]["headers"]["apns-collapse-id"] for p in sent}) == 1
    async with session_scope() as session:
        stored = await session.scalar(
            select(func.count())
            .select_from(Notification)
            .where(Notification.user_id == user.user_id)
        )
        push = (await session.scalars(select(Push))).one()
    assert stored == 1
    assert push.idempotency_key == sent[0]["data"]["idempotency_key"]

"""kill -9 through the whole product: a worker dies mid-sweep, and nothing is lost or doubled.

PostgreSQL, the sandbox standalone in its own process, an API process and two worker processes
(no scheduler: the workers finish the run). An admin starts a task sweep of the organisation;
employees approve tasks while it runs; one worker is killed with SIGKILL while deliveries are
in flight, then started again. Then: every task stored once and notified once, every approval
audited once, one push per user at the sandbox (a push in flight at the kill may arrive twice,
with the same idempotency key), and the run ``succeeded``.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from app.core.db import Database
from tests.faults.cluster import Cluster, eventually, relays_listening
from tests.faults.conftest import log_in, populate, size

pytestmark = [pytest.mark.slow, pytest.mark.postgres_only]

USERS = size("FAULTS_KILL_USERS", 30)
PATIENCE = 1 + USERS / 500
"""The waits grow with the sweep (1,000 users took 149 s to finish on a loaded machine)."""
APPROVERS = 3
WINDOW = 8.0
"""The push summary window: a user's tasks from the three sources share one push."""


async def _rows(db: Database, sql: str, **params: Any) -> list[Any]:
    async with db.engine.connect() as conn:
        return list((await conn.execute(text(sql), params)).all())


async def _open_deliveries(db: Database) -> dict[str, int]:
    rows = await _rows(
        db,
        "SELECT status, count(*) FROM outbox_deliveries "
        "WHERE status IN ('pending', 'running') GROUP BY status",
    )
    return {str(status): int(count) for status, count in rows}


async def _run(api: str, admin: dict[str, str], run_id: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=api, timeout=30) as http:
        response = await http.get("/api/v1/admin/jobs/task_sweep/runs", headers=admin)
    assert response.status_code == 200, response.text
    runs = {run["id"]: run for run in response.json()["items"]}
    found: dict[str, Any] = runs[run_id]
    return found


async def _approve_one(api: str, headers: dict[str, str]) -> str:
    """Approve the employee's first procurement task once the sweep has stored it."""
    async with httpx.AsyncClient(base_url=api, timeout=60, headers=headers) as http:
        deadline = time.monotonic() + 60 * PATIENCE
        while True:
            page = (await http.get("/api/v1/procurement/tasks")).json()
            if page.get("items"):
                break
            assert time.monotonic() < deadline, "the sweep never stored the approver's tasks"
            await asyncio.sleep(0.2)
        task = page["items"][0]
        response = await http.post(
            f"/api/v1/procurement/tasks/{task['id']}/actions", json={"action": "APPROVE"}
        )
    assert response.status_code == 200, response.text
    approval_id: str = response.json()["approval_id"]
    return approval_id


async def test_a_worker_killed_mid_sweep_loses_nothing_and_doubles_nothing(
    ready: FastAPI, db: Database, cluster: Cluster, sandbox_key: Path
) -> None:
    setup = time.monotonic()
    sandbox = cluster.start_sandbox(SANDBOX_USERS=str(USERS), SANDBOX_NEW_TASK_INTERVAL_SECONDS="0")
    assert sandbox.url is not None
    cluster.env.update(
        FCM_PROVIDER="sandbox",
        FCM_SANDBOX_URL=f"{sandbox.url}/fcm",
        NOTIFICATIONS_SUMMARY_WINDOW_SECONDS=str(WINDOW),
    )
    api = cluster.start_api("api").url
    assert api is not None
    cluster.start_worker("worker-a")
    cluster.start_worker("worker-b")
    people = await populate(sandbox.url, sandbox_key, users=USERS, approvers=APPROVERS)
    await cluster.up("sandbox", "api")
    await relays_listening(db, 2)
    admin = (await log_in(api, people.admin)).headers
    approvers = [(await log_in(api, a)).headers for a in people.approvers]

    started = time.monotonic()
    phases = {"setup": started - setup}
    async with httpx.AsyncClient(base_url=api, timeout=30) as http:
        response = await http.post("/api/v1/admin/jobs/task_sweep/run", headers=admin)
    assert response.status_code == 202, response.text
    run_id = response.json()["run_id"]
    approvals = asyncio.gather(*(_approve_one(api, headers) for headers in approvers))

    async def half_synced() -> bool:
        done = await _rows(
            db,
            "SELECT count(*) FROM outbox_deliveries "
            "WHERE listener_id LIKE '%.tasks.sync' AND status = 'done'",
        )
        return int(done[0][0]) >= USERS * 3 // 2

    # The kill comes in the middle of the sweep: syncs and notifications are in flight then.
    await eventually(half_synced, 120 * PATIENCE, "half the users' syncs")
    phases["kill"] = time.monotonic() - started
    at_kill = await _open_deliveries(db)
    killed = cluster.processes["worker-a"].popen.pid
    cluster.kill("worker-a")
    in_flight = await _rows(
        db,
        "SELECT listener_id FROM outbox_deliveries WHERE status = 'running'",
    )
    assert at_kill.get("pending", 0) + at_kill.get("running", 0) > 0, "the sweep was over"
    pushes_in_flight = sum(1 for (listener,) in in_flight if listener == "notification.push")
    cluster.start_worker("worker-a")
    approval_ids = await approvals

    async def finished() -> bool:
        return bool((await _run(api, admin, run_id))["status"] != "running")

    await eventually(finished, 180 * PATIENCE, "the run to finish")
    phases["finished"] = time.monotonic() - started

    async def drained() -> bool:
        return not await _open_deliveries(db)

    await eventually(drained, 120 * PATIENCE, "every delivery (the pushes too) to close")
    seconds = time.monotonic() - started
    run = await _run(api, admin, run_id)
    assert run["status"] == "succeeded", run
    assert run["users"] == USERS, run
    assert run["failures"] == 0, run

    # Every task stored once in its inbox, and notified once.
    stored: Counter[tuple[str, str, str]] = Counter()
    for module in ("procurement", "hr", "leasing"):
        for user_id, task_id in await _rows(db, f"SELECT user_id, task_id FROM {module}_tasks"):
            stored[(str(user_id), module, task_id)] += 1
    assert stored, "the sweep stored no task"
    assert max(stored.values()) == 1, "a task was stored twice"
    notified = Counter(
        (str(user_id), module, task_id)
        for user_id, module, task_id in await _rows(
            db, "SELECT user_id, module, task_id FROM notifications"
        )
    )
    assert notified == stored, "a task has no notification, or two"

    # Every approval audited once (the audit deliveries may have died with the worker).
    for approval_id in approval_ids:
        audited = await _rows(
            db, "SELECT outcome FROM procurement_approvals WHERE id = :id", id=approval_id
        )
        assert audited == [("succeeded",)], approval_id
    count = await _rows(db, "SELECT count(*) FROM procurement_approvals")
    assert count[0][0] == len(approval_ids)

    # One push per user at the sandbox; a push in flight at the kill may have gone out twice.
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.get(f"{sandbox.url}/fcm/messages", params={"limit": 10_000})
    messages = response.json()["items"]
    owners = {
        token: str(user_id)
        for token, user_id in await _rows(db, "SELECT token, user_id FROM notification_devices")
    }
    by_user: dict[str, list[str]] = defaultdict(list)
    for message in messages:
        by_user[owners[message["token"]]].append(message["data"]["idempotency_key"])
    assert set(by_user) == {user for user, _, _ in stored}, "a user with new tasks got no push"
    spread = {
        str(user_id): (last - first).total_seconds()
        for user_id, first, last in await _rows(
            db,
            "SELECT user_id, min(created_at), max(created_at) FROM notifications GROUP BY user_id",
        )
    }
    sent = Counter(
        str(user_id)
        for (user_id,) in await _rows(
            db, "SELECT user_id FROM notification_pushes WHERE status = 'sent'"
        )
    )
    repeats = 0
    for user, keys in by_user.items():
        # Tasks that reach a user within the summary window share one push (a task whose
        # delivery the dead worker held may come after the window: it gets a push of its own).
        assert len(set(keys)) == sent[user], "a push was sent but never reached FCM, or twice"
        if spread[user] < WINDOW:
            assert len(set(keys)) == 1, f"{len(set(keys))} pushes within {spread[user]:.1f} s"
        repeats += len(keys) - len(set(keys))
    late = sum(1 for user in by_user if spread[user] >= WINDOW)
    assert repeats <= pushes_in_flight, (repeats, pushes_in_flight)
    # Only the killed worker's leases expired: a live worker kept every lease it held.
    expired = await _rows(
        db,
        "SELECT e->>'message' FROM outbox_deliveries, jsonb_array_elements(errors::jsonb) e "
        "WHERE e->>'type' = 'LeaseExpired'",
    )
    stolen = [message for (message,) in expired if f":{killed}:" not in message]
    assert stolen == [], f"{len(stolen)} leases of live workers expired: {stolen[:5]}"
    assert cluster.problems() == [], cluster.log_text()[-20_000:]
    print(
        f"\n{USERS} users: {len(stored)} tasks, {len(messages)} pushes "
        f"({repeats} repeated, {pushes_in_flight} in flight at the kill), {late} users' tasks "
        f"spread over more than the window, {seconds:.1f} s {phases}"
    )

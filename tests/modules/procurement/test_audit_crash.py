"""A worker killed between the source call and the audit delivery: the record is written once.

The API (this process, its relay off) approves a task: the sandbox records the call and the
``audit.procurement.approval`` delivery waits in the outbox. A first worker process claims it,
writes the audit record, and is killed with SIGKILL before its transaction commits. A second
worker rescues the delivery when the lease expires and writes the record: once.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from app.core.db import session_scope
from app.core.inbox.settings import get_inbox_settings
from app.core.settings import Settings, get_settings, reset_settings
from app.events.outbox.models import OutboxDelivery
from app.modules.procurement.models import ProcurementApproval
from tests.events.outbox_support import start_worker, until, worker_env
from tests.factories import Account
from tests.inbox_support import RunningSandbox, tasks

AUDIT = "procurement.approvals.audit"


@pytest.fixture
def settings(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """This process serves the API only: durable deliveries wait for the worker processes."""
    monkeypatch.setenv("EVENTS_RELAY_ENABLED", "false")
    reset_settings()
    get_inbox_settings.cache_clear()
    yield get_settings()
    reset_settings()


async def _audit() -> tuple[int, str | None, int]:
    async with session_scope(join=False) as session:
        records = await session.scalar(select(func.count()).select_from(ProcurementApproval))
        delivery = (
            await session.execute(
                select(OutboxDelivery.status, OutboxDelivery.attempts).where(
                    OutboxDelivery.listener_id == AUDIT
                )
            )
        ).one_or_none()
    status, attempts = (delivery[0], delivery[1]) if delivery else (None, 0)
    return int(records or 0), status, int(attempts)


@pytest.mark.slow
async def test_a_worker_killed_mid_audit_writes_the_record_once_after_restart(
    app: FastAPI,
    client: httpx.AsyncClient,
    employee: Account,
    connected: RunningSandbox,
    database_url: str,
    project_root: Path,
    tmp_path: Path,
) -> None:
    task = (await tasks(client, "procurement", employee, refresh="true"))["items"][0]
    response = await client.post(
        f"/api/v1/procurement/tasks/{task['id']}/actions",
        json={"action": "APPROVE"},
        headers=employee.headers,
    )
    assert response.status_code == 200, response.text
    assert len(connected.state.task_decisions) == 1
    assert await _audit() == (0, "pending", 0)

    marker = tmp_path / "inside-the-audit"
    env = worker_env(
        database_url,
        EVENTS_EXTRA_LISTENERS="tests.modules.procurement.crash_support:listeners",
        AUDIT_CRASH_MARKER=str(marker),
    )
    first = second = None
    try:
        first = start_worker(env, project_root)

        async def inside() -> bool:
            return marker.exists()

        await until(inside, 60, "the first worker to write the audit record")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        records, status, attempts = await _audit()
        assert (records, status, attempts) == (0, "running", 1)

        env.pop("EVENTS_EXTRA_LISTENERS")
        second = start_worker(env, project_root)

        async def written() -> bool:
            return (await _audit())[1] == "done"

        await until(written, 60, "the second worker to write the audit record")
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
    assert await _audit() == (1, "done", 2)
    trail = (await client.get("/api/v1/procurement/approvals", headers=employee.headers)).json()
    assert [(r["id"], r["outcome"]) for r in trail["items"]] == [
        (response.json()["approval_id"], "succeeded")
    ]
    assert len(connected.state.task_decisions) == 1

"""Two of everything on one PostgreSQL: each tick runs once per organisation, each delivery once.

Two API processes, two workers and two schedulers, with a task sweep every two seconds (a
six-field cron), over ten ticks for two organisations. Then: one run per tick and
organisation, no tick left out, every run finished with its users swept, and no delivery run
twice (every delivery done at its first attempt, and the sandbox received one worklist call
per sync).
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from datetime import datetime, timedelta
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

TICKS = size("FAULTS_TICKS", 10)
PERIOD = 2
"""Seconds between ticks (``*/2 * * * * *``)."""
USERS = 5
"""Per organisation."""


async def _rows(db: Database, sql: str, **params: Any) -> list[Any]:
    async with db.engine.connect() as conn:
        return list((await conn.execute(text(sql), params)).all())


async def test_two_of_everything_runs_each_tick_once_and_each_delivery_once(
    ready: FastAPI, db: Database, cluster: Cluster, sandbox_key: Path
) -> None:
    sandbox = cluster.start_sandbox(
        SANDBOX_USERS=str(2 * USERS), SANDBOX_NEW_TASK_INTERVAL_SECONDS="0"
    )
    assert sandbox.url is not None
    cluster.env.update(
        SCHEDULER_TASK_SWEEP_CRON=f"*/{PERIOD} * * * * *",
        FCM_PROVIDER="log",
        NOTIFICATIONS_SUMMARY_WINDOW_SECONDS="0",
        # The fault tests' short leases (3 s, cluster.process_env): on a busy machine a live
        # delivery must keep its lease (renewed on a thread of its own) and never pass to the
        # other relay, so "every delivery done at its first attempt" checks that too.
    )
    apis = [cluster.start_api(f"api-{i}") for i in range(2)]
    for i in range(2):
        cluster.start_worker(f"worker-{i}")
    first = await populate(sandbox.url, sandbox_key, users=USERS, name="First")
    second = await populate(sandbox.url, sandbox_key, users=USERS, name="Second")
    await cluster.up("sandbox", "api-0", "api-1")
    await relays_listening(db, 2)
    for i in range(2):
        cluster.start_scheduler(f"scheduler-{i}", APP_LOG_LEVEL="INFO")

    async def schedulers_ready() -> bool:
        return all("next run at" in cluster.log_text(f"scheduler-{i}") for i in range(2))

    await eventually(schedulers_ready, 120, "both schedulers to start their crons")
    # Count the ticks due once both schedulers fire: a process started mid-period never fires
    # the tick it missed, so the first tick after now is the first both see.
    since = (await _rows(db, "SELECT now()"))[0][0] + timedelta(seconds=1)
    started = time.monotonic()

    async def ten_ticks() -> bool:
        ticks = await _rows(
            db,
            "SELECT count(DISTINCT scheduled_for) FROM scheduler_runs WHERE scheduled_for > :t",
            t=since,
        )
        return int(ticks[0][0]) >= TICKS

    await eventually(ten_ticks, TICKS * PERIOD * 4 + 60, f"{TICKS} ticks")
    for i in range(2):
        assert cluster.stop(f"scheduler-{i}") == 0, cluster.log_text(f"scheduler-{i}")
    ticking = time.monotonic() - started

    async def all_finished() -> bool:
        running = await _rows(db, "SELECT count(*) FROM scheduler_runs WHERE status = 'running'")
        return int(running[0][0]) == 0

    await eventually(all_finished, 120, "every run to finish (the workers reconcile them)")

    runs = await _rows(
        db,
        "SELECT organization_id, scheduled_for, status, users, skipped, triggered_by "
        "FROM scheduler_runs WHERE job_id = 'task_sweep' AND scheduled_for > :t",
        t=since,
    )
    per_tick: dict[datetime, Counter[str]] = {}
    for organization_id, scheduled_for, status, users, skipped, triggered_by in runs:
        per_tick.setdefault(scheduled_for, Counter())[str(organization_id)] += 1
        assert triggered_by == "schedule"
        assert status == "succeeded", (scheduled_for, status)
        assert users + skipped == USERS, (users, skipped)
    organizations = {str(first.organization_id), str(second.organization_id)}
    ticks = sorted(per_tick)
    assert len(ticks) >= TICKS
    for tick in ticks:
        assert per_tick[tick] == Counter(dict.fromkeys(organizations, 1)), tick
    gaps = {(b - a).total_seconds() for a, b in itertools.pairwise(ticks)}
    assert gaps == {float(PERIOD)}, f"a tick was left out or fired off its cron: {gaps}"

    # No delivery ran twice: each was done at its first attempt, and the sandbox saw one
    # worklist call per procurement and hr sync.
    attempts = await _rows(
        db, "SELECT status, attempts, count(*) FROM outbox_deliveries GROUP BY status, attempts"
    )
    twice = await _rows(
        db, "SELECT id, listener_id, last_error FROM outbox_deliveries WHERE attempts > 1"
    )
    assert {(status, tries) for status, tries, _ in attempts} == {("done", 1)}, twice
    syncs = await _rows(
        db,
        "SELECT count(*) FROM outbox_deliveries "
        "WHERE listener_id IN ('procurement.tasks.sync', 'hr.tasks.sync')",
    )
    async with httpx.AsyncClient(timeout=10) as http:
        calls = (await http.get(f"{sandbox.url}/faults/retry-after")).json()
        requests = await http.get(f"{sandbox.url}/traffic")
    assert calls["limited"] == 0
    assert requests.status_code == 200, requests.text
    assert requests.json()["oracle"]["requests"] == syncs[0][0]

    # Both APIs answer the same history.
    for api in apis:
        assert api.url is not None
        admin = (await log_in(api.url, first.admin)).headers
        async with httpx.AsyncClient(base_url=api.url, timeout=30, headers=admin) as http:
            page = (await http.get("/api/v1/admin/jobs/task_sweep/runs?limit=200")).json()
        assert len([r for r in page["items"] if r["triggered_by"] == "schedule"]) >= TICKS
    assert cluster.problems() == [], cluster.log_text()[-20_000:]
    deliveries = sum(n for *_, n in attempts)
    print(f"\n{len(ticks)} ticks in {ticking:.1f} s, {len(runs)} runs, {deliveries} deliveries")

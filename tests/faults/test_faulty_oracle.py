"""A faulty Oracle through the whole product: the sweep completes, and the API keeps answering.

PostgreSQL, the sandbox standalone, an API process and two workers. Oracle answers 20% of
requests with a 5xx and holds 5% until the client times out; bursts of 429 with
``Retry-After`` come every second or so; in the middle of the sweep Oracle goes down
altogether until the breakers have opened, then comes back (with its random faults). Then:
the sweep completes; no retry came before its ``Retry-After`` (measured at the sandbox); the
breakers opened and closed again (the workers' ``/metrics``); what exhausted its retries is a
dead letter that the admin API lists and that succeeds when retried once the faults stop;
reads of the inbox never answered a 5xx; no process logged a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from app.core.db import Database
from tests.faults.cluster import Cluster, eventually, free_port, relays_listening
from tests.faults.conftest import log_in, populate, size

pytestmark = [pytest.mark.slow, pytest.mark.postgres_only]

USERS = size("FAULTS_ORACLE_USERS", 30)
PATIENCE = 1 + USERS / 250
"""The waits grow with the sweep: a delivery retried during the outage waits behind the
syncs never tried yet, and at 1,000 users a first dead letter took over 120 s."""
RATES = {"error_rate": 0.2, "timeout_rate": 0.05, "timeout_seconds": 2}
"""Oracle's random faults: 20% 5xx, 5% held longer than the client's read timeout."""
WORKER_ENV = {
    "HTTP_READ_TIMEOUT_SECONDS": "1",
    "HTTP_RETRY_BACKOFF_SECONDS": "0.1",
    "HTTP_RETRY_BACKOFF_MAX_SECONDS": "0.5",
    "HTTP_RETRY_AFTER_MAX_SECONDS": "2",
    "HTTP_BREAKER_FAILURE_THRESHOLD": "5",
    "HTTP_BREAKER_RESET_SECONDS": "1",
    "FCM_PROVIDER": "log",
    "NOTIFICATIONS_SUMMARY_WINDOW_SECONDS": "0",
}


async def _scalar(db: Database, sql: str) -> Any:
    async with db.engine.connect() as conn:
        return (await conn.execute(text(sql))).scalar()


def _sample(exposition: str, name: str) -> float:
    """The value of ``name{integration="oracle_fusion"}`` in a Prometheus exposition."""
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == name and sample.labels.get("integration") == "oracle_fusion":
                return float(sample.value)
    return 0.0


async def _read_all_the_time(api: str, headers: dict[str, str], statuses: list[int]) -> None:
    """An employee reading the inbox every 0.2 s, as a phone does, until cancelled."""
    async with httpx.AsyncClient(base_url=api, timeout=30, headers=headers) as http:
        while True:
            statuses.append((await http.get("/api/v1/procurement/tasks")).status_code)
            await asyncio.sleep(0.2)


async def _bursts_of_429(sandbox: str) -> None:
    """A burst of ten 429s (``Retry-After: 1``) every 1.5 s, until cancelled."""
    async with httpx.AsyncClient(base_url=sandbox, timeout=10) as http:
        while True:
            await http.post(
                "/faults", json={"system": "oracle", "status": 429, "retry_after": 1, "times": 10}
            )
            await asyncio.sleep(1.5)


async def test_a_faulty_oracle_never_breaks_a_promise(
    ready: FastAPI, db: Database, cluster: Cluster, sandbox_key: Path
) -> None:
    sandbox = cluster.start_sandbox(SANDBOX_USERS=str(USERS), SANDBOX_NEW_TASK_INTERVAL_SECONDS="0")
    assert sandbox.url is not None
    api = cluster.start_api("api").url
    assert api is not None
    metrics_ports = [free_port(), free_port()]
    for name, port in zip(("worker-a", "worker-b"), metrics_ports, strict=True):
        cluster.start_worker(name, APP_METRICS_PORT=str(port), **WORKER_ENV)
    people = await populate(sandbox.url, sandbox_key, users=USERS, approvers=1)
    await cluster.up("sandbox", "api")
    await relays_listening(db, 2)
    admin = (await log_in(api, people.admin)).headers
    reader = (await log_in(api, people.approvers[0])).headers

    oracle = httpx.AsyncClient(base_url=sandbox.url, timeout=10)
    admin_api = httpx.AsyncClient(base_url=api, timeout=30, headers=admin)
    reads: list[int] = []
    background = [
        asyncio.create_task(_read_all_the_time(api, reader, reads)),
        asyncio.create_task(_bursts_of_429(sandbox.url)),
    ]
    try:
        rates = await oracle.put("/faults/rates", json={"system": "oracle", **RATES})
        assert rates.status_code == 200, rates.text
        started = time.monotonic()
        response = await admin_api.post("/api/v1/admin/jobs/task_sweep/run")
        assert response.status_code == 202, response.text
        run_id = response.json()["run_id"]

        async def a_third_synced() -> bool:
            done = await _scalar(
                db,
                "SELECT count(*) FROM outbox_deliveries "
                "WHERE listener_id = 'procurement.tasks.sync' AND status = 'done'",
            )
            return int(done) >= USERS // 3

        await eventually(a_third_synced, 120 * PATIENCE, "a third of the procurement syncs")
        # Oracle goes down: the breakers open, and what keeps failing becomes a dead letter.
        await oracle.post("/faults", json={"system": "oracle", "status": 503, "times": 10_000})

        async def dead_letters() -> bool:
            return (
                int(
                    await _scalar(
                        db, "SELECT count(*) FROM outbox_deliveries WHERE status = 'dead'"
                    )
                )
                > 0
            )

        await eventually(dead_letters, 120 * PATIENCE, "a delivery to exhaust its retries")
        # Oracle comes back, as faulty as before.
        await oracle.delete("/faults", params={"system": "oracle"})
        await oracle.put("/faults/rates", json={"system": "oracle", **RATES})

        async def finished() -> bool:
            runs = (await admin_api.get("/api/v1/admin/jobs/task_sweep/runs")).json()["items"]
            return any(r["id"] == run_id and r["status"] != "running" for r in runs)

        await eventually(finished, 240 * PATIENCE, "the sweep to complete")
        swept = time.monotonic() - started
    finally:
        for task in background:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # The faults stop: every dead letter, listed by the admin API, succeeds when retried.
    await oracle.delete("/faults")
    listed = await admin_api.get("/api/v1/admin/events/deliveries", params={"status": "dead"})
    assert listed.status_code == 200, listed.text
    dead = [d["id"] for d in listed.json()["items"]]
    assert dead, "no dead letter was listed"
    for delivery_id in dead:
        retried = await admin_api.post(f"/api/v1/admin/events/deliveries/{delivery_id}/retry")
        assert retried.status_code == 200, retried.text

    async def retried_and_done() -> bool:
        ids = ", ".join(str(i) for i in dead)
        done = await _scalar(
            db, f"SELECT count(*) FROM outbox_deliveries WHERE id IN ({ids}) AND status = 'done'"
        )
        return int(done) == len(dead)

    await eventually(retried_and_done, 120 * PATIENCE, "the retried dead letters to succeed")
    ledger = (await oracle.get("/faults/retry-after")).json()
    await oracle.aclose()
    await admin_api.aclose()

    assert ledger["limited"] > 0, "no 429 was answered"
    assert ledger["honoured"] > 0, "no call was retried after its Retry-After"
    assert ledger["early"] == [], "a retry came before its Retry-After"
    opened = closed = 0.0
    async with httpx.AsyncClient(timeout=10) as http:
        for port in metrics_ports:
            exposition = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
            opened += _sample(exposition, "workflow_hub_integration_breaker_opened_total")
            closed += _sample(exposition, "workflow_hub_integration_breaker_closed_total")
    assert opened > 0, "no breaker opened"
    assert closed > 0, "no breaker closed again"
    # Nothing was killed: no running delivery lost its lease to the other worker.
    expired = await _scalar(
        db, "SELECT count(*) FROM outbox_deliveries WHERE errors::text LIKE '%LeaseExpired%'"
    )
    assert int(expired) == 0, f"{expired} deliveries lost their lease while running"
    assert reads, "the API was never read"
    assert all(status < 500 for status in reads), sorted(set(reads))
    assert cluster.problems() == [], cluster.log_text()[-20_000:]
    print(
        f"\n{USERS} users under faults: swept in {swept:.1f} s; {len(dead)} dead letters, "
        f"retried; breakers opened {opened:.0f}, closed {closed:.0f}; "
        f"429s: {ledger['limited']}, retries after their Retry-After: "
        f"{ledger['honoured']}; {len(reads)} reads, statuses {sorted(set(reads))}"
    )

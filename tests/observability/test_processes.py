"""A worker process has no API: with APP_METRICS_PORT it serves its own GET /metrics."""

from __future__ import annotations

import asyncio
import signal
import socket
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from app.core.db import Database
from tests.cli import app_env, start_app


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_a_worker_serves_its_own_metrics_with_the_outbox_gauges(
    database_url: str, db: Database, project_root: Path
) -> None:
    port = free_port()
    env = app_env(
        DATABASE_URL=database_url,
        APP_ENV="test",
        APP_HOST="127.0.0.1",
        EVENTS_RELAY_HEARTBEAT_SECONDS="0.5",
    )
    worker = start_app(["worker", "--metrics-port", str(port)], env, project_root)
    refreshed = 0.0
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(600):
                try:
                    response = await http.get(f"http://127.0.0.1:{port}/metrics")
                except httpx.TransportError:
                    response = None
                if response is not None and response.status_code == 200:
                    families = {f.name: f for f in text_string_to_metric_families(response.text)}
                    stamp = families.get("workflow_hub_outbox_stats_refreshed_timestamp_seconds")
                    refreshed = stamp.samples[0].value if stamp else 0.0
                    if refreshed:
                        break
                assert worker.poll() is None, worker.communicate()[0]
                await asyncio.sleep(0.1)
        worker.send_signal(signal.SIGTERM)
        output, _ = await asyncio.to_thread(worker.communicate, timeout=60)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(10)
    assert refreshed > 0, "the worker never refreshed the outbox gauges"
    assert "workflow_hub_outbox_deliveries" in families
    assert worker.returncode == 0, output

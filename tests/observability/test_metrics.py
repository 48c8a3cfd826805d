"""GET /metrics after a walk through the product: every named series is there, and no label
carries a user, a token or any other unbounded value."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from app.core.db import session_scope, utcnow
from app.events.base import new_event_id
from app.events.outbox.models import OutboxDelivery, OutboxEvent
from app.events.outbox.relay import Relay
from app.integrations.transport import BreakerRegistry
from tests.factories import Account
from tests.inbox_support import RunningSandbox
from tests.observability.walk import DEVICE_TOKEN, walk

SERIES = {
    # app/core/metrics.py
    "workflow_hub_http_requests_total",
    "workflow_hub_http_request_duration_seconds",
    # app/events/metrics.py
    "workflow_hub_events_emitted_total",
    "workflow_hub_durable_deliveries_total",
    "workflow_hub_durable_delivery_duration_seconds",
    "workflow_hub_relay_claim_lag_seconds",
    "workflow_hub_outbox_deliveries",
    "workflow_hub_outbox_oldest_due_age_seconds",
    "workflow_hub_outbox_stats_refreshed_timestamp_seconds",
    # app/integrations/metrics.py
    "workflow_hub_integration_calls_total",
    "workflow_hub_integration_call_duration_seconds",
    "workflow_hub_integration_attempts_total",
    "workflow_hub_integration_breaker_state",
    "workflow_hub_integration_breakers_open",
    # app/scheduler/metrics.py
    "workflow_hub_job_runs_total",
    "workflow_hub_job_run_duration_seconds",
    "workflow_hub_task_sync_freshness_seconds",
    # app/modules/notification/metrics.py
    "workflow_hub_push_sends_total",
}

UUID = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}", re.I)
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
JWT = re.compile(r"eyJ[\w-]+\.[\w-]+")
OPAQUE = re.compile(r"[A-Za-z0-9+=_-]{24,}")
"""A long run without dots or spaces that mixes digits into letters: a token or a key."""


async def scrape(client: httpx.AsyncClient) -> list[Sample]:
    """Every sample of ``GET /metrics``."""
    response = await client.get("/metrics")
    assert response.status_code == 200
    return [
        sample
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    ]


def names(samples: list[Sample]) -> set[str]:
    """The series names of ``samples``, without the histogram and counter suffixes."""
    out = set()
    for sample in samples:
        name = sample.name
        for suffix in ("_bucket", "_count", "_sum", "_created"):
            if name.endswith(suffix) and not name.endswith("_total" + suffix):
                name = name.removesuffix(suffix)
        out.add(name)
    return out


def value(samples: list[Sample], name: str, **labels: str) -> float:
    found = [s.value for s in samples if s.name == name and labels.items() <= s.labels.items()]
    assert found, f"no sample {name} {labels}"
    return sum(found)


def looks_unbounded(text: str) -> bool:
    if UUID.search(text) or EMAIL.search(text) or JWT.search(text):
        return True
    opaque = OPAQUE.fullmatch(text)
    return bool(opaque) and any(c.isdigit() for c in text) and any(c.isalpha() for c in text)


async def test_a_walk_exports_every_series_without_an_unbounded_label(
    app: FastAPI,
    client: httpx.AsyncClient,
    employee: Account,
    connected: RunningSandbox,
) -> None:
    await walk(app, client, employee)
    samples = await scrape(client)

    assert names(samples) >= SERIES, sorted(SERIES - names(samples))
    secrets = {
        employee.access_token,
        employee.refresh_token,
        employee.email,
        str(employee.user_id),
        str(employee.organization_id),
        DEVICE_TOKEN,
    }
    for sample in samples:
        if not sample.name.startswith("workflow_hub_"):
            continue
        for label, text in sample.labels.items():
            if label == "le":
                continue
            assert not looks_unbounded(text), (sample.name, label, text)
            assert not any(secret in text for secret in secrets), (sample.name, label, text)

    # The walk is counted where it happened.
    assert value(samples, "workflow_hub_push_sends_total", outcome="sent") >= 1
    assert value(samples, "workflow_hub_job_runs_total", job="task_sweep", status="succeeded") >= 1
    assert (
        value(
            samples,
            "workflow_hub_integration_calls_total",
            integration="oracle_fusion",
            operation="list_tasks",
            outcome="2xx",
        )
        >= 1
    )
    assert (
        value(samples, "workflow_hub_integration_breaker_state", integration="oracle_fusion") == 0
    )
    handlers = {
        s.labels["handler"] for s in samples if s.name == "workflow_hub_http_requests_total"
    }
    assert "/api/v1/notifications/{notification_id}/read" in handlers
    assert "/api/v1/{module}/tasks" in handlers or "/api/v1/procurement/tasks" in handlers
    assert value(samples, "workflow_hub_http_requests_total", status="404") >= 1
    assert value(samples, "workflow_hub_task_sync_freshness_seconds") >= 0


async def test_the_outbox_gauges_count_open_work_and_the_oldest_due_delivery(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    now = utcnow()
    event_id = new_event_id()
    async with session_scope() as session:
        session.add(
            OutboxEvent(
                id=event_id,
                name="user.created",
                version=1,
                organization_id=None,
                correlation_id="c",
                occurred_at=now,
                payload={},
            )
        )
        await session.flush()
        rows = [
            ("pending", False, now - timedelta(seconds=90)),  # due for a minute and a half
            ("pending", False, now + timedelta(hours=1)),  # a retry waiting: not due
            ("pending", True, now - timedelta(hours=2)),  # held behind a dead letter
            ("dead", False, now - timedelta(hours=3)),
            ("running", False, now - timedelta(seconds=5)),
        ]
        for n, (status, held, available_at) in enumerate(rows):
            session.add(
                OutboxDelivery(
                    event_id=event_id,
                    listener_id=f"tests.gauge_{n}",
                    event_name="user.created",
                    status=status,
                    held=held,
                    available_at=available_at,
                )
            )
    stats = await Relay(app.state.emitter, app.state.database).refresh_gauges()
    assert stats.counts == {"pending": 2, "held": 1, "running": 1, "dead": 1}
    samples = await scrape(client)
    assert value(samples, "workflow_hub_outbox_deliveries", status="dead") == 1
    assert value(samples, "workflow_hub_outbox_deliveries", status="held") == 1
    age = value(samples, "workflow_hub_outbox_oldest_due_age_seconds")
    assert 89 <= age <= 120


async def test_the_breaker_gauge_shows_the_worst_state_of_each_integration(
    client: httpx.AsyncClient,
) -> None:
    moment = [0.0]
    breakers = BreakerRegistry(failure_threshold=1, reset_seconds=30, clock=lambda: moment[0])
    breakers.get("yardi_probe", "tenant-a").record_success()
    breakers.get("yardi_probe", "tenant-b").record_failure("HTTP 503")

    samples = await scrape(client)
    state = "workflow_hub_integration_breaker_state"
    assert value(samples, state, integration="yardi_probe") == 2
    assert value(samples, "workflow_hub_integration_breakers_open", integration="yardi_probe") == 1
    moment[0] = 31.0  # past the reset: the next call is a probe
    assert value(await scrape(client), state, integration="yardi_probe") == 1
    breakers.get("yardi_probe", "tenant-b").before_call()
    breakers.get("yardi_probe", "tenant-b").record_success()
    assert value(await scrape(client), state, integration="yardi_probe") == 0
    closed = "workflow_hub_integration_breaker_closed_total"
    assert value(await scrape(client), closed, integration="yardi_probe") >= 1

    # Integrations closed (an app stopped) no longer report their breakers, even before the
    # garbage collector finds the registry: a stopped app's open breaker is not this process's.
    breakers.get("yardi_probe", "tenant-b").record_failure("HTTP 503")
    assert value(await scrape(client), state, integration="yardi_probe") == 2
    breakers.close()
    after = await scrape(client)
    assert not [
        s for s in after if s.name == state and s.labels.get("integration") == "yardi_probe"
    ]

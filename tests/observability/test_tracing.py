"""OpenTelemetry: a sweep tick, a user's sync, the task received and its push are one trace.

The spans go to an in-memory exporter instead of OTLP. The tracer provider is process-wide:
the fixture installs it once, and turns the emitter's spans and the httpx and SQLAlchemy
instrumentations off again afterwards, so other tests run untraced.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from app.core import tracing as core_tracing
from app.core.db import utcnow
from app.events import tracing as event_tracing
from app.events.outbox.models import OutboxEvent
from app.scheduler.catalog import registered_jobs
from app.scheduler.engine import Scheduler
from tests.factories import Account, settle
from tests.inbox_support import RunningSandbox

EXPORTER = InMemorySpanExporter()


@pytest.fixture(autouse=True)
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    """Tracing on, into :data:`EXPORTER` (the endpoint is set, and never reached)."""
    monkeypatch.setenv(core_tracing.ENDPOINT, "http://127.0.0.1:9")
    assert core_tracing.configure_tracing("workflow-hub-tests", exporter=EXPORTER)
    EXPORTER.clear()
    yield EXPORTER
    event_tracing.enable(False)
    HTTPXClientInstrumentor().uninstrument()
    SQLAlchemyInstrumentor().uninstrument()
    monkeypatch.setattr(core_tracing, "_installed", False)
    EXPORTER.clear()


def named(spans: list[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [span for span in spans if span.name == name]


async def test_a_sweep_tick_a_sync_the_task_received_and_its_push_are_one_trace(
    app: FastAPI,
    client: httpx.AsyncClient,
    employee: Account,
    connected: RunningSandbox,
    spans: InMemorySpanExporter,
) -> None:
    response = await client.post(
        "/api/v1/devices",
        headers=employee.headers,
        json={"token": "trace-device-1", "platform": "ios"},
    )
    assert response.status_code == 201, response.text
    await settle(app)
    requests = [s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert any(
        s.attributes and s.attributes.get("http.route") == "/api/v1/devices" for s in requests
    )
    spans.clear()

    scheduler = Scheduler(registered_jobs(), app.state.settings.scheduler)
    assert await scheduler.fire("task_sweep", utcnow())
    await settle(app)

    finished = list(spans.get_finished_spans())
    (tick,) = named(finished, "tick task_sweep")
    trace_id = tick.context.trace_id
    in_trace = [span for span in finished if span.context.trace_id == trace_id]
    by_id = {span.context.span_id: span for span in in_trace}
    chain = [
        "emit scheduler.run.started",
        "deliver scheduler.run.fan_out",
        "emit user.sync.task.notifications",
        "deliver procurement.tasks.sync",
        "emit procurement.task.received",
        "emit notification.push.scheduled",
        "deliver notification.push",
    ]
    for name in chain:
        assert named(in_trace, name), (name, sorted({s.name for s in finished}))
    stores = [s for s in in_trace if s.name.startswith("deliver notification.procurement")]
    assert stores, sorted({s.name for s in in_trace})

    # Each durable delivery is a child of the emit of its event: the envelope carried it.
    for delivery in [s for s in in_trace if s.name.startswith("deliver ")]:
        assert delivery.kind is SpanKind.CONSUMER
        assert delivery.parent is not None
        parent = by_id[delivery.parent.span_id]
        assert parent.name == f"emit {delivery.attributes['messaging.destination.name']}"  # type: ignore[index]
        assert parent.kind is SpanKind.PRODUCER

    # The calls made along the way are in it too: Oracle, Yardi, FCM and the SQL.
    clients = [s for s in in_trace if s.kind is SpanKind.CLIENT]
    urls = {
        str((s.attributes or {}).get("url.full") or (s.attributes or {}).get("http.url"))
        for s in clients
    }
    assert any("/oracle/" in url for url in urls), urls
    assert any("/yardi/" in url for url in urls), urls

    # The push's FCM send: one "fcm send" span per batch under its push delivery, and under it
    # firebase-admin's HTTP request to FCM (the sandbox's), traced by the httpx instrumentation.
    # (The user's tasks may make one push or several: a task arriving while the first push goes
    # out opens the next one.)
    sends = named(in_trace, "fcm send")
    assert sends, sorted({s.name for s in in_trace})
    for send in sends:
        assert send.parent is not None
        assert by_id[send.parent.span_id].name == "deliver notification.push"
        attributes = dict(send.attributes or {})
        assert attributes["workflow_hub.push.provider"] == "sandbox", attributes
        assert attributes["workflow_hub.push.messages"] == 1, attributes  # one device
        assert attributes["workflow_hub.push.sent"] == 1, attributes
    requests = [
        s
        for s in clients
        if "/fcm/"
        in str((s.attributes or {}).get("url.full") or (s.attributes or {}).get("http.url"))
    ]
    assert sorted(r.parent.span_id for r in requests if r.parent is not None) == sorted(
        send.context.span_id for send in sends
    ), [(r.name, r.parent) for r in requests]
    assert any((s.attributes or {}).get("db.system") for s in clients), [
        (s.name, dict(s.attributes or {})) for s in finished
    ][:8]


async def test_the_outbox_row_carries_the_emit_span_s_traceparent(
    app: FastAPI,
    client: httpx.AsyncClient,
    employee: Account,
    connected: RunningSandbox,
    spans: InMemorySpanExporter,
) -> None:
    from sqlalchemy import select

    from app.core.db import session_scope

    scheduler = Scheduler(registered_jobs(), app.state.settings.scheduler)
    assert await scheduler.fire("task_sweep", utcnow())
    async with session_scope() as session:
        stored = (await session.scalars(select(OutboxEvent))).all()
    (started,) = named(list(spans.get_finished_spans()), "emit scheduler.run.started")
    (row,) = [event for event in stored if event.name == "scheduler.run.started"]
    context = started.context
    assert row.traceparent is not None
    assert row.traceparent.startswith(f"00-{context.trace_id:032x}-{context.span_id:016x}-")
    await settle(app)

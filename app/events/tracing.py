"""Spans of the emitter: one per emit, one per delivery, linked through the event envelope.

An emit opens a producer span ``emit <event>``. Its W3C ``traceparent`` travels in the event's
envelope, and so in the outbox row (column ``traceparent``): a durable delivery, run later by
any relay in any process, opens its consumer span ``deliver <listener>`` as a child of that
emit. Events emitted inside a listener are emitted inside its span, so one sweep tick, a user's
sync, the task received and its push are one trace. A background delivery is a child through
the task's copied context, with its own span too. Inline listeners run inside the emit's span.

Tracing is off unless the composition root turns it on (when ``app.core.tracing`` installed a
tracer provider): then the emit path pays one boolean test. Only ``opentelemetry-api`` is
needed here, imported lazily, so the app runs without the ``[otel]`` extra.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from app.events.base import Envelope

_tracer: Any = None
"""The emitter's tracer while tracing is on, else None."""


def enable(on: bool = True) -> None:
    """Turn the emitter's spans on or off (off also when ``opentelemetry-api`` is missing)."""
    global _tracer
    if not on:
        _tracer = None
        return
    try:
        from opentelemetry import trace
    except ImportError:
        _tracer = None
        return
    _tracer = trace.get_tracer("app.events")


def enabled() -> bool:
    """Whether the emitter opens spans."""
    return _tracer is not None


def _attributes(envelope: Envelope) -> dict[str, str]:
    attributes = {
        "messaging.system": "workflow_hub",
        "messaging.destination.name": envelope.name,
        "messaging.message.id": str(envelope.id),
        "workflow_hub.correlation_id": envelope.correlation_id,
    }
    if envelope.organization_id is not None:
        attributes["workflow_hub.organization_id"] = str(envelope.organization_id)
    return attributes


@contextmanager
def emitting(envelope: Envelope) -> Iterator[Envelope]:
    """Open the span of one emit; yield its envelope carrying the span's ``traceparent``."""
    from opentelemetry import propagate
    from opentelemetry.trace import SpanKind

    with _tracer.start_as_current_span(
        f"emit {envelope.name}",
        kind=SpanKind.PRODUCER,
        attributes={**_attributes(envelope), "messaging.operation.type": "publish"},
    ):
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        yield dataclasses.replace(envelope, traceparent=carrier.get("traceparent"))


@contextmanager
def delivering(listener: str, envelope: Envelope, *, delivery: str) -> Iterator[None]:
    """Open the span of one delivery of ``envelope``'s event to ``listener``.

    A durable delivery continues the emitter's trace from the envelope's ``traceparent``; a
    background one from the context its task copied.
    """
    if _tracer is None:
        yield
        return
    from opentelemetry import propagate
    from opentelemetry.trace import SpanKind

    parent = None
    if delivery == "durable" and envelope.traceparent:
        parent = propagate.extract({"traceparent": envelope.traceparent})
    with _tracer.start_as_current_span(
        f"deliver {listener}",
        context=parent,
        kind=SpanKind.CONSUMER,
        attributes={
            **_attributes(envelope),
            "messaging.operation.type": "process",
            "workflow_hub.listener": listener,
            "workflow_hub.delivery": delivery,
        },
    ):
        yield


@contextmanager
def span(name: str, **attributes: str) -> Iterator[None]:
    """Open an internal span (a scheduler tick, say) when tracing is on."""
    if _tracer is None:
        yield
        return
    with _tracer.start_as_current_span(name, attributes=attributes):
        yield

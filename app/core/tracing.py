"""OpenTelemetry tracing: off unless ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set.

The SDK, the OTLP exporter and the FastAPI, httpx and SQLAlchemy instrumentations come with the
``[otel]`` extra (``pip install 'workflow-hub[otel]'``); without it the app runs untraced and
says so once at start. The standard ``OTEL_*`` variables are the SDK's own: the endpoint,
``OTEL_EXPORTER_OTLP_PROTOCOL`` (``http/protobuf`` by default, or ``grpc``),
``OTEL_EXPORTER_OTLP_HEADERS``, ``OTEL_SERVICE_NAME``, ``OTEL_TRACES_SAMPLER``...

The tracer provider and the httpx and SQLAlchemy instrumentations are process-wide, installed
once; FastAPI's is per application. The emitter's own spans (emit and every delivery, linked
through the event envelope) are in ``app/events/tracing.py``; :func:`span` opens the other
parts' own (an FCM send, say).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from fastapi import FastAPI

logger = logging.getLogger(__name__)

ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
UNTRACED_PATHS = "/metrics,/healthz,/readyz"

_installed = False


def tracing_requested() -> bool:
    """Whether this process is asked to trace (``OTEL_EXPORTER_OTLP_ENDPOINT`` is set)."""
    return bool(os.environ.get(ENDPOINT, "").strip())


def configure_tracing(service_name: str, *, exporter: Any = None) -> bool:
    """Install the tracer provider and the httpx and SQLAlchemy instrumentations, once.

    Args:
        service_name: ``service.name`` unless ``OTEL_SERVICE_NAME`` names one.
        exporter: a span exporter to use instead of OTLP (tests pass an in-memory one).

    Returns:
        Whether tracing is on: False when no endpoint is set or the ``[otel]`` extra is not
        installed.
    """
    global _installed
    if not tracing_requested() and exporter is None:
        return False
    try:
        from opentelemetry import trace
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    except ImportError:
        logger.warning("%s is set but the [otel] extra is not installed: tracing is off", ENDPOINT)
        return False
    if _installed:
        return True
    name = os.environ.get("OTEL_SERVICE_NAME") or service_name
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        provider.add_span_processor(BatchSpanProcessor(_otlp_exporter()))
    trace.set_tracer_provider(provider)
    HTTPXClientInstrumentor().instrument()
    # It declares SQLAlchemy < 2.1 and would skip itself on 2.1; it hooks the engine's cursor
    # events, which 2.1 keeps (tests/observability/test_tracing.py sees the SQL spans).
    SQLAlchemyInstrumentor().instrument(skip_dep_check=True)
    _installed = True
    logger.info("tracing on: spans go to %s", os.environ.get(ENDPOINT) or "the given exporter")
    return True


def _otlp_exporter() -> Any:
    protocol = os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # type: ignore[assignment]
            OTLPSpanExporter,
        )
    return OTLPSpanExporter()


def instrument_app(app: FastAPI) -> None:
    """Trace every request of ``app`` (a server span per request; probes left out)."""
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(app, excluded_urls=UNTRACED_PATHS)


class _Untraced:
    """What :func:`span` yields while tracing is off: attributes set on it go nowhere."""

    def set_attribute(self, key: str, value: Any) -> None:
        return None


@contextmanager
def span(
    name: str, attributes: Mapping[str, str | int] | None = None, *, client: bool = False
) -> Iterator[Any]:
    """Open a span named ``name`` in the current trace when tracing is on; else do nothing.

    Args:
        name: the span's name (an operation, never an id).
        client: a call to another system (``SpanKind.CLIENT``) rather than internal work.
        attributes: the span's attributes.

    Yields:
        The span (``set_attribute`` adds what is known at the end), or a stand-in.
    """
    if not _installed:
        yield _Untraced()
        return
    from opentelemetry import trace
    from opentelemetry.trace import SpanKind

    kind = SpanKind.CLIENT if client else SpanKind.INTERNAL
    with trace.get_tracer("app").start_as_current_span(
        name, kind=kind, attributes=dict(attributes or {})
    ) as current:
        yield current

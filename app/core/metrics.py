"""Every metric series of the HTTP surface, named in one place, and the ``/metrics`` exposition.

Each package names its own series in its ``metrics.py`` (``app/events``, ``app/integrations``,
``app/scheduler``, ``app/modules/notification``); ``GET /metrics`` serves the process's default
registry, so whatever those files declare is exported once imported. See docs/operations.md for
the whole list and the alerts built on it.

HTTP requests are measured by prometheus-fastapi-instrumentator, which resolves each request to
its route template (``/api/v1/users/{user_id}``, never the id itself) and hands us the outcome;
the series it records into are ours, below, so their names and labels live here. A request that
matches no route is ``handler="none"``; a method outside the standard set is ``method="other"``:
no label takes a value from the client unchecked.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI
from prometheus_client import Counter, Histogram, start_http_server
from prometheus_fastapi_instrumentator import Instrumentator
from prometheus_fastapi_instrumentator.metrics import Info

HTTP_REQUESTS = Counter(
    "workflow_hub_http_requests_total",
    "HTTP requests answered, by route template, method and status code.",
    ["handler", "method", "status"],
)
HTTP_REQUEST_DURATION = Histogram(
    "workflow_hub_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template and method.",
    ["handler", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMEASURED = ("/metrics", "/healthz", "/readyz")
"""Probes and scrapes: counting them would drown the traffic they watch."""


def _record(info: Info) -> None:
    method = info.method if info.method in METHODS else "other"
    HTTP_REQUESTS.labels(info.modified_handler, method, info.modified_status).inc()
    HTTP_REQUEST_DURATION.labels(info.modified_handler, method).observe(info.modified_duration)


def serve_metrics(host: str, port: int) -> Callable[[], None]:
    """Serve ``GET /metrics`` on ``host:port`` from a thread (worker and scheduler processes,
    which have no HTTP server of their own); return the function that stops it."""
    server, thread = start_http_server(port, addr=host)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return stop


def resolve_routes(app: FastAPI) -> None:
    """Build FastAPI's per-route state now, at start.

    FastAPI builds each included route's dependencies lazily, on the first request that
    resolves routes (a few tenths of a second for this app), and the instrumentator resolves
    the route template of every request, even one a middleware refuses before routing. Paying
    it at start keeps that cost off the first user's request.
    """
    for route in app.router.routes:
        contexts = getattr(route, "effective_route_contexts", None)
        if callable(contexts):
            list(contexts())


def instrument_http(app: FastAPI) -> None:
    """Measure every request of ``app`` into the HTTP series above."""
    Instrumentator(
        should_group_status_codes=False,
        should_group_untemplated=True,
        excluded_handlers=[f"^{path}$" for path in UNMEASURED],
    ).add(_record).instrument(app)

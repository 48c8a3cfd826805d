"""Every metric series of the HTTP surface, named in one place, and the ``/metrics`` exposition.

Each package names its own series in its ``metrics.py`` (``app/events``, ``app/integrations``,
``app/scheduler``, ``app/modules/notification``); ``GET /metrics`` serves the process's default
registry, so whatever those files declare is exported once imported. See docs/operations.md for
the whole list and the alerts built on it.

HTTP requests are measured by prometheus-fastapi-instrumentator's middleware, which hands us
each request's route template (``/api/v1/users/{user_id}``, never the id itself) and outcome; the
series it records into are ours, below, so their names and labels live here. A request that
matches no route is ``handler="none"``; a method outside the standard set is ``method="other"``:
no label takes a value from the client unchecked. The library finds the template by matching
every route a second time before the app runs; :class:`MatchedRouteMiddleware` reads it, after
the app ran, from the route the router matched (see docs/operations.md for the cost).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from timeit import default_timer
from typing import Any

from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from prometheus_client import Counter, Histogram, start_http_server
from prometheus_fastapi_instrumentator.metrics import Info
from prometheus_fastapi_instrumentator.middleware import PrometheusInstrumentatorMiddleware
from starlette.requests import Request
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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


Templates = tuple[tuple[re.Pattern[str], str], ...]


class MatchedRouteMiddleware(PrometheusInstrumentatorMiddleware):
    """prometheus-fastapi-instrumentator's middleware, told the template the router matched.

    The library resolves a request's template before the app runs, by matching it against every
    route again (0.3 to 0.6 ms a request over this app's ~80 routes). This subclass asks after
    the app ran instead: the router left the route it chose in ``scope["route"]``, and that
    route's full template (its path under every router prefix) is found once per route object,
    from FastAPI's route contexts, and kept. A route object included under two prefixes has a
    template for each; the one whose pattern matches the path is taken. When the router chose
    no route of this app (no route: 404; refused before routing: 413 or 422; a mounted app; a
    trailing-slash redirect), the library's own lookup decides, on the scope as it was before
    the app ran: every label is the one the library would give.

    Only the options :func:`instrument_http` uses are implemented: no in-progress gauge, no body
    handlers, no rounding and no async instrumentations (refused), and ``info.response`` is None.
    """

    def __init__(self, app: ASGIApp, /, **options: Any) -> None:
        super().__init__(app, **options)
        if (
            self.should_instrument_requests_inprogress
            or self.body_handlers
            or self.should_round_latency_decimals
            or self.async_instrumentations
            or self.should_include_root_path
        ):
            raise ValueError("an option MatchedRouteMiddleware does not implement was set")
        self._templates: dict[int, tuple[BaseRoute, Templates]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        before = dict(scope)  # routing and mounts change the scope; the fallback needs it as is
        start = default_timer()
        status_code = 500
        response_start: float | None = None

        async def send_wrapper(message: Message) -> None:
            nonlocal status_code, response_start
            if message["type"] == "http.response.start":
                status_code = message["status"]
                response_start = default_timer()
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self._measure(scope, before, start, response_start, status_code)

    def _measure(
        self,
        scope: Scope,
        before: Scope,
        start: float,
        response_start: float | None,
        status_code: int,
    ) -> None:
        handler = self._matched_template(scope, before)
        if handler is None:
            pristine = {**before}
            if isinstance(pristine.get("fastapi"), dict):
                pristine["fastapi"] = dict(pristine["fastapi"])
            handler, is_templated = self._get_handler(Request(pristine))
        else:
            is_templated = True
        if self._is_handler_excluded(handler, is_templated):
            return
        if not is_templated and self.should_group_untemplated:
            handler = "none"
        status = str(int(status_code))
        if self.should_group_status_codes:
            status = status[0] + "xx"
        now = default_timer()
        info = Info(
            request=Request(scope),
            response=None,
            method=scope["method"],
            modified_handler=handler,
            modified_status=status,
            modified_duration=max(now - start, 0.0),
            modified_duration_without_streaming=(
                max(response_start - start, 0.0) if response_start is not None else 0.0
            ),
        )
        for instrumentation in self.instrumentations:
            instrumentation(info)

    def _matched_template(self, scope: Scope, before: Scope) -> str | None:
        """The full template of the route the router chose, or None when it chose none known."""
        route = scope.get("route")
        if route is None:
            return None
        entry = self._templates.get(id(route))
        if entry is None or entry[0] is not route:  # the entry holds its route: ids stay unique
            entry = (route, _templates_of(route, before.get("app")))
            self._templates[id(route)] = entry
        path = _route_path(before)
        for pattern, template in entry[1]:
            if pattern.match(path):
                return template
        return None  # a mounted app's route, or one included again since: the library decides


def _templates_of(route: BaseRoute, app: Any) -> Templates:
    """Each full template under which ``app`` serves ``route``, with its path pattern."""
    routes = getattr(app, "routes", None) or []
    found: list[tuple[re.Pattern[str], str]] = []
    for context in iter_route_contexts(routes):
        if context.original_route is not route:
            continue
        template = context.path_format
        pattern = getattr(context, "path_regex", None)
        if isinstance(template, str) and isinstance(pattern, re.Pattern):
            found.append((pattern, template))
    return tuple(found)


def _route_path(scope: Scope) -> str:
    """The path the app's routes match against: the path under the app's root path."""
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if root_path and path.startswith(root_path) and path != root_path:
        return path[len(root_path) :]
    return path


def instrument_http(app: FastAPI) -> None:
    """Measure every request of ``app`` into the HTTP series above."""
    app.add_middleware(
        MatchedRouteMiddleware,
        should_group_status_codes=False,
        should_group_untemplated=True,
        excluded_handlers=[f"^{path}$" for path in UNMEASURED],
        instrumentations=[_record],
    )

"""The HTTP series' route label: the full template of the route the router chose, the label the
instrumentator library gives, for every way a request can end (app/core/metrics.py)."""

from __future__ import annotations

import uuid

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from prometheus_client import REGISTRY
from prometheus_fastapi_instrumentator.routing import get_route_name
from starlette.requests import Request

from app.core.metrics import MatchedRouteMiddleware
from tests.factories import Account, employee, org

__all__ = ["employee", "org"]

SERIES = "workflow_hub_http_requests_total"


def counted(handler: str, method: str, status: int) -> float:
    labels = {"handler": handler, "method": method, "status": str(status)}
    return REGISTRY.get_sample_value(SERIES, labels) or 0.0


def library_label(app: FastAPI, method: str, path: str) -> str | None:
    """What prometheus-fastapi-instrumentator resolves for this request before the app runs."""
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "root_path": "",
        "query_string": b"",
        "headers": [],
        "app": app,
    }
    return get_route_name(Request(scope), should_include_root_path=False)


async def answer_and_count(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    handler: str,
    status: int,
    **kwargs: object,
) -> None:
    before = counted(handler, method, status)
    response = await client.request(method, path, **kwargs)  # type: ignore[arg-type]
    assert response.status_code == status, response.text
    assert counted(handler, method, status) == before + 1, (method, path, handler)


async def test_each_way_a_request_ends_is_counted_under_the_library_s_template(
    app: FastAPI, client: httpx.AsyncClient, employee: Account
) -> None:
    auth = {"Authorization": f"Bearer {employee.access_token}"}
    unread = "/api/v1/notifications/unread-count"
    cases: list[tuple[str, str, str, int, dict[str, object]]] = [
        # a route of an included router: its full template
        ("GET", unread, unread, 200, {"headers": auth}),
        # a path parameter: the template, never the id
        (
            "POST",
            f"/api/v1/notifications/{uuid.uuid4()}/read",
            "/api/v1/notifications/{notification_id}/read",
            404,
            {"headers": auth},
        ),
        # the path of a route, another method: the route's template (a partial match)
        ("DELETE", unread, unread, 405, {"headers": auth}),
        # refused before routing (a body over the login's limit): the template still
        ("POST", "/api/v1/auth/login", "/api/v1/auth/login", 413, {"content": b"x" * 17_000}),
        # a mounted app without routes of its own: the mount's path
        ("GET", "/console/static/console.css", "/console/static", 200, {}),
        # no route at all: "none", not the path
        ("GET", f"/api/v1/nothing/{uuid.uuid4()}", "none", 404, {}),
    ]
    for method, path, handler, status, kwargs in cases:
        assert library_label(app, method, path) == (None if handler == "none" else handler)
        await answer_and_count(client, method, path, handler, status, **kwargs)


async def test_the_probes_and_the_scrape_are_not_counted(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    for path in ("/healthz", "/readyz", "/metrics"):
        before = counted(path, "GET", 200)
        assert (await client.get(path)).status_code == 200
        assert counted(path, "GET", 200) == before
    handlers = {
        sample.labels.get("handler")
        for metric in REGISTRY.collect()
        if metric.name == SERIES.removesuffix("_total")
        for sample in metric.samples
    }
    assert not handlers & {"/healthz", "/readyz", "/metrics"}


def _things() -> APIRouter:
    router = APIRouter()

    @router.get("/things/{thing_id}")
    async def read_thing(thing_id: int) -> dict[str, int]:
        return {"id": thing_id}

    return router


async def test_one_router_under_two_prefixes_counts_each_under_its_own(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    things = _things()
    app.include_router(things, prefix="/test/a")
    await answer_and_count(client, "GET", "/test/a/things/1", "/test/a/things/{thing_id}", 200)
    # included again after it served a request, under another prefix
    app.include_router(things, prefix="/test/b")
    await answer_and_count(client, "GET", "/test/b/things/2", "/test/b/things/{thing_id}", 200)
    await answer_and_count(client, "GET", "/test/a/things/3", "/test/a/things/{thing_id}", 200)
    await answer_and_count(client, "GET", "/test/b/things/x", "/test/b/things/{thing_id}", 422)


async def test_a_mounted_app_s_route_is_counted_under_the_mount_and_its_template(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    inner = FastAPI()
    inner.include_router(_things(), prefix="/v2")
    app.mount("/test/inner", inner)
    path = "/test/inner/v2/things/7"
    assert library_label(app, "GET", path) == "/test/inner/v2/things/{thing_id}"
    await answer_and_count(client, "GET", path, "/test/inner/v2/things/{thing_id}", 200)


def test_the_options_it_does_not_implement_are_refused() -> None:
    async def nothing(*_: object) -> None:
        return None

    with pytest.raises(ValueError, match="does not implement"):
        MatchedRouteMiddleware(nothing, should_instrument_requests_inprogress=True)

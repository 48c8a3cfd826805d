"""The foundation: health, problem+json errors, correlation ids, transactions."""

from __future__ import annotations

import logging
import uuid

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from pydantic import BaseModel, Field
from sqlalchemy import func, select

from app.core.db import DbSession, after_commit, savepoint, session_scope
from app.core.errors import PROBLEM_JSON, NotFound
from app.core.tenancy import Organization, ensure_organization


async def test_healthz_and_readyz(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["database"] == "ok"


async def test_readyz_is_503_when_the_database_is_down(
    client: httpx.AsyncClient, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken_ping() -> None:
        raise ConnectionError("database went away")

    monkeypatch.setattr(app.state.database, "ping", broken_ping)
    response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["code"] == "not_ready"


async def test_metrics_are_prometheus_text(client: httpx.AsyncClient) -> None:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert "python_info" in response.text


async def test_unknown_route_is_problem_json(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert body["code"] == "not_found"
    assert body["status"] == 404
    assert body["correlation_id"] == response.headers["x-request-id"]


async def test_wrong_method_is_problem_json(client: httpx.AsyncClient) -> None:
    response = await client.post("/healthz")
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


class Probe(BaseModel):
    model_config = {"extra": "forbid"}
    name: str = Field(min_length=1)
    count: int


def _probe_router() -> APIRouter:
    router = APIRouter()

    @router.post("/probe")
    async def probe(body: Probe) -> dict[str, str]:
        return {"name": body.name}

    @router.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals")

    @router.get("/missing")
    async def missing() -> None:
        raise NotFound("No such widget.", code="widget_not_found")

    @router.post("/organizations/{name}")
    async def create(name: str, session: DbSession) -> dict[str, str]:
        organization = await ensure_organization(session, name)
        if name.startswith("fail"):
            raise NotFound("rolled back", code="rolled_back")
        return {"id": str(organization.id)}

    return router


@pytest.fixture
async def probe_client(app: FastAPI, client: httpx.AsyncClient) -> httpx.AsyncClient:
    app.include_router(_probe_router(), prefix="/test")
    return client


async def test_validation_errors_list_each_field(probe_client: httpx.AsyncClient) -> None:
    response = await probe_client.post("/test/probe", json={"name": "", "extra": 1})
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert body["code"] == "validation_error"
    locations = {tuple(error["loc"]) for error in body["errors"]}
    assert locations == {("body", "name"), ("body", "count"), ("body", "extra")}


async def test_malformed_json_is_422_problem(probe_client: httpx.AsyncClient) -> None:
    response = await probe_client.post(
        "/test/probe", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"


async def test_domain_error_keeps_its_code(probe_client: httpx.AsyncClient) -> None:
    response = await probe_client.get("/test/missing")
    assert response.status_code == 404
    assert response.json()["code"] == "widget_not_found"
    assert response.json()["detail"] == "No such widget."


async def test_unexpected_error_is_500_without_stack(
    probe_client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        response = await probe_client.get("/test/boom", headers={"X-Request-ID": "req-boom-1"})
    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.headers["x-request-id"] == "req-boom-1"
    body = response.json()
    assert body["code"] == "internal_error"
    assert body["correlation_id"] == "req-boom-1"
    assert "secret internals" not in response.text
    assert "Traceback" not in response.text
    logged = [r for r in caplog.records if r.exc_info]
    assert logged, "the stack must be logged"
    assert logged[0].correlation_id == "req-boom-1"  # type: ignore[attr-defined]


async def test_request_id_is_honoured_or_created(client: httpx.AsyncClient) -> None:
    echoed = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["x-request-id"] == "abc-123"
    created = await client.get("/healthz")
    assert len(created.headers["x-request-id"]) == 32
    hostile = await client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
    assert hostile.headers["x-request-id"] != "bad id\twith spaces"


async def _count(name: str) -> int:
    async with session_scope() as session:
        result = await session.execute(
            select(func.count()).select_from(Organization).where(Organization.name == name)
        )
        return int(result.scalar_one())


async def test_request_session_commits_on_success(probe_client: httpx.AsyncClient) -> None:
    response = await probe_client.post("/test/organizations/acme")
    assert response.status_code == 200
    assert await _count("acme") == 1


async def test_request_session_rolls_back_on_error(probe_client: httpx.AsyncClient) -> None:
    response = await probe_client.post("/test/organizations/fail-co")
    assert response.status_code == 404
    assert await _count("fail-co") == 0


async def test_after_commit_hooks_run_only_on_commit(app: FastAPI) -> None:
    ran: list[str] = []
    async with session_scope() as session:
        after_commit(session, lambda: ran.append("committed"))
    with pytest.raises(RuntimeError):
        async with session_scope() as session:
            after_commit(session, lambda: ran.append("rolled back"))
            raise RuntimeError("abort")
    assert ran == ["committed"]


async def test_after_commit_hooks_of_a_rolled_back_savepoint_are_dropped(app: FastAPI) -> None:
    ran: list[str] = []
    async with session_scope() as session:
        async with savepoint(session):
            after_commit(session, lambda: ran.append("kept savepoint"))
        with pytest.raises(RuntimeError):
            async with savepoint(session):
                after_commit(session, lambda: ran.append("rolled-back savepoint"))
                raise RuntimeError("abort the savepoint only")
        after_commit(session, lambda: ran.append("outer"))
    assert ran == ["kept savepoint", "outer"]


async def test_ids_are_uuid_and_times_are_utc(app: FastAPI) -> None:
    async with session_scope() as session:
        organization = await ensure_organization(session, "Tz Co")
        organization_id = organization.id
    async with session_scope() as session:
        loaded = await session.get(Organization, organization_id)
        assert loaded is not None
        assert isinstance(loaded.id, uuid.UUID)
        assert loaded.created_at.utcoffset() is not None
        assert loaded.created_at.utcoffset().total_seconds() == 0  # type: ignore[union-attr]

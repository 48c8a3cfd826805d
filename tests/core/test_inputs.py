"""Hostile inputs: NUL characters, oversized and malformed bodies, long error lists, and logs."""

from __future__ import annotations

import logging
import time
import tracemalloc
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.core.db import session_scope
from tests.factories import Account, admin, employee, org, problem_code

__all__ = ["admin", "employee", "org"]

LOGIN = "/api/v1/auth/login"
USERS = "/api/v1/users"


def _nul_errors(response: httpx.Response) -> list[list[Any]]:
    assert response.status_code == 422, response.text
    assert problem_code(response) == "validation_error"
    return [error["loc"] for error in response.json()["errors"]]


LOGIN_BODY: dict[str, Any] = {
    "email": "someone@example.com",
    "password": "a-password",
    "device": {"token": "device-token", "platform": "ios", "name": "Phone"},
}
LOGIN_STRINGS = [("email",), ("password",), ("device", "token"), ("device", "name")]


def _with_nul(body: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    copy: dict[str, Any] = {k: dict(v) if isinstance(v, dict) else v for k, v in body.items()}
    target = copy
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = f"{target[path[-1]]}\x00x"
    return copy


@pytest.mark.parametrize("path", LOGIN_STRINGS, ids=".".join)
async def test_nul_in_any_string_of_the_login_body_is_a_422_naming_it(
    client: httpx.AsyncClient, path: tuple[str, ...]
) -> None:
    response = await client.post(LOGIN, json=_with_nul(LOGIN_BODY, path))
    assert _nul_errors(response) == [["body", *path]]


USER_BODY: dict[str, Any] = {
    "email": "new@example.com",
    "password": "a-long-password",
    "role": "employee",
    "user_type": "EMPLOYEE",
    "first_name": "New",
    "last_name": "Person",
    "oracle_username": "NEW.PERSON",
    "person_number": "123456",
}


@pytest.mark.parametrize("field", list(USER_BODY))
async def test_nul_in_any_string_of_the_user_bodies_is_a_422_naming_it(
    client: httpx.AsyncClient, admin: Account, employee: Account, field: str
) -> None:
    created = await client.post(USERS, json=_with_nul(USER_BODY, (field,)), headers=admin.headers)
    assert _nul_errors(created) == [["body", field]]
    patched = await client.patch(
        f"{USERS}/{employee.user_id}", json={field: f"x\x00{field}"}, headers=admin.headers
    )
    assert _nul_errors(patched) == [["body", field]]
    assert (await client.get(USERS, headers=admin.headers)).json()["total"] == 2  # nothing stored


@pytest.mark.parametrize("param", ["event", "listener_id", "status"])
async def test_nul_in_a_query_parameter_is_a_422_naming_it(
    client: httpx.AsyncClient, admin: Account, param: str
) -> None:
    response = await client.get(
        "/api/v1/admin/events/deliveries", params={param: "a\x00b"}, headers=admin.headers
    )
    assert _nul_errors(response) == [["query", param]]


async def test_an_escaped_backslash_is_not_a_nul(client: httpx.AsyncClient, admin: Account) -> None:
    body = {**USER_BODY, "first_name": "back\\u0000slash"}  # a backslash, then "u0000"
    response = await client.post(USERS, json=body, headers=admin.headers)
    assert response.status_code == 201, response.text
    assert response.json()["first_name"] == "back\\u0000slash"


async def _chunks(total: int, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    chunk = b" " * size
    for _ in range(total // size):
        yield chunk


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
async def test_a_10_mb_body_is_refused_with_413_at_once_and_memory_stays_flat(
    client: httpx.AsyncClient, declared: bool
) -> None:
    total = 10 * 1024 * 1024
    headers = {"Content-Type": "application/json"}
    if declared:
        headers["Content-Length"] = str(total)
    tracemalloc.start()
    started = time.perf_counter()
    try:
        response = await client.post(LOGIN, content=_chunks(total), headers=headers)
        took = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code == 413, response.text
    assert problem_code(response) == "payload_too_large"
    assert response.json()["max_bytes"] == 16 * 1024  # the auth routes take small bodies
    assert took < 1.0
    assert peak < 2 * 1024 * 1024, f"peak {peak} bytes"


async def test_other_routes_take_up_to_the_general_limit(
    client: httpx.AsyncClient, admin: Account
) -> None:
    padded = {**USER_BODY, "first_name": "x" * (32 * 1024)}  # over the auth limit, under 1 MiB
    response = await client.post(USERS, json=padded, headers=admin.headers)
    assert response.status_code == 422  # read and validated (too long a name), not refused
    assert [e["loc"] for e in response.json()["errors"]] == [["body", "first_name"]]
    huge = {**USER_BODY, "first_name": "x" * (2 * 1024 * 1024)}
    assert (await client.post(USERS, json=huge, headers=admin.headers)).status_code == 413


async def test_a_422_lists_at_most_20_errors_and_a_bounded_detail(
    client: httpx.AsyncClient, admin: Account
) -> None:
    body = {**USER_BODY, **{f"unknown_{n}_{'k' * 200}": n for n in range(500)}}
    response = await client.post(USERS, json=body, headers=admin.headers)
    assert response.status_code == 422
    problem = response.json()
    assert len(problem["errors"]) == 20
    assert problem["errors_total"] == 500
    assert problem["detail"].endswith("and 480 more.")
    assert len(response.content) < 16 * 1024


@pytest.mark.parametrize(
    "content",
    [b'{"email": ', b'{"email": "\xff\xfe"}', b"[" * 100_000 + b"]" * 100_000],
    ids=["invalid-json", "invalid-utf8", "too-deep"],
)
async def test_every_malformed_body_is_one_422_at_the_body(
    client: httpx.AsyncClient, admin: Account, content: bytes
) -> None:
    headers = {**admin.headers, "Content-Type": "application/json"}
    response = await client.post(USERS, content=content, headers=headers)
    assert response.status_code == 422, response.text
    assert problem_code(response) == "validation_error"
    assert response.json()["errors"][0]["loc"][0] == "body"
    assert response.json()["errors"][0]["type"] == "json_invalid"


async def test_a_failed_write_never_logs_its_bound_values(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    secret = f"private-{uuid.uuid4().hex}@example.com"
    organization_id = str(uuid.uuid4())
    insert = text("INSERT INTO organizations (id, name, created_at) VALUES (:id, :name, :at)")
    params = {"id": organization_id, "name": secret, "at": "2026-01-01 00:00:00"}
    with pytest.raises(DBAPIError) as failure:  # the same primary key twice
        async with session_scope() as session:
            await session.execute(insert, params)
            await session.execute(insert, params)
    logging.getLogger("tests").error("write failed", exc_info=failure.value)
    assert secret not in str(failure.value)
    assert caplog.records
    assert all(secret not in record.getMessage() for record in caplog.records)
    assert secret not in caplog.text

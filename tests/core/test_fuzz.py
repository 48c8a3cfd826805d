"""Schemathesis over every operation of the OpenAPI document, as anonymous, employee and admin.

Cases are generated from the document the app serves (valid and invalid ones), sent through the
ASGI app on this run's database, and each answer is checked against the document: no 5xx, a
declared status, a declared media type, a body that fits its schema, and every error a
problem+json with a ``code``. Routes that modules add later are covered without touching this
file. The number of cases per operation is bounded so that a run stays well under two minutes.
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.factories import Account, admin, connect_to_sandbox, create_user, employee, log_in, org
from tests.integrations.conftest import (
    RunningSandbox,
    clock,
    demo_key,
    loopback,
    sandbox,
    sandbox_settings,
)

__all__ = [
    "admin",
    "clock",
    "demo_key",
    "employee",
    "loopback",
    "org",
    "sandbox",
    "sandbox_settings",
]

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "4"))
"""Cases per operation and generation mode (valid, invalid), for each caller."""

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _cases(app: FastAPI) -> list[Any]:
    """Draw the cases of every operation of the document ``app`` serves."""
    schema = schemathesis.openapi.from_dict(app.openapi())
    cases: list[Any] = []
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]  # an invalid document raises
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategy: st.SearchStrategy[Any] = operation.as_strategy(generation_mode=mode)

            @settings(
                max_examples=EXAMPLES,
                phases=[Phase.explicit, Phase.generate],
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
            )
            @given(strategy)
            def collect(case: Any) -> None:
                cases.append(case)

            try:
                collect()
            except Unsatisfiable:  # nothing to make invalid (no parameters, no body)
                continue
    return cases


@pytest.mark.parametrize("caller", ["anonymous", "employee", "admin"])
async def test_every_operation_answers_as_the_document_declares(
    app: FastAPI,
    client: httpx.AsyncClient,
    org: Any,
    sandbox: RunningSandbox,
    demo_key: tuple[Any, str],
    caller: str,
) -> None:
    # The organisation's integrations point at the sandbox, as in the demo: the pipelines run.
    await connect_to_sandbox(org, sandbox.url, jwt_private_key=demo_key[1])
    account: Account | None = None
    if caller != "anonymous":
        role = "admin" if caller == "admin" else "employee"
        account = await log_in(client, await create_user(org, role=role))
    failures: list[str] = []
    operations: set[str] = set()
    for case in sorted(_cases(app), key=_last_if_it_changes_the_integrations):
        operations.add(f"{case.method} {case.path}")
        headers = dict(case.headers or {})
        if account is not None:
            if not account.access_token:  # a fresh session: the last case logged out
                account = await log_in(client, account)
            headers["Authorization"] = f"Bearer {account.access_token}"
        response = await _send(client, case, headers)
        if account is not None and response.status_code == 401:
            account = replace(account, access_token="")
        problems = _check(case, response)
        if problems:
            failures.append(
                f"{case.method} {response.request.url} -> {response.status_code}: {problems}"
            )
    assert len(operations) >= 30, sorted(operations)
    assert failures == [], "\n".join(failures[:15])


def _last_if_it_changes_the_integrations(case: Any) -> bool:
    """Changing or removing a connection runs last, so the other operations reach the sandbox."""
    return bool(case.path.startswith("/api/v1/admin/integrations") and case.method != "GET")


async def _send(client: httpx.AsyncClient, case: Any, headers: dict[str, str]) -> httpx.Response:
    kwargs = case.as_transport_kwargs(base_url="http://testserver", headers=headers)
    body: dict[str, Any] = {}
    if "json" in kwargs:
        body["json"] = kwargs["json"]
    data = kwargs.get("data")
    if isinstance(data, bytes | str):
        body["content"] = data
    elif data is not None:
        body["data"] = data
    if kwargs.get("files"):
        body["files"] = kwargs["files"]
    cookies = kwargs.get("cookies")
    if cookies:
        kwargs["headers"]["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    return await client.request(
        kwargs["method"],
        kwargs["url"],
        headers=kwargs.get("headers"),
        params=kwargs.get("params"),
        **body,
    )


def _check(case: Any, response: httpx.Response) -> str:
    try:
        case.validate_response(response, checks=CHECKS)
    except (AssertionError, FailureGroup) as exc:
        lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
        return " | ".join(lines[1:5])[:400]
    if response.status_code >= 400:
        if response.headers.get("content-type") != "application/problem+json":
            return f"an error as {response.headers.get('content-type')}"
        if not response.json().get("code"):
            return "a problem without a code"
    return ""

"""The catalog exported as AsyncAPI 3.0."""

from __future__ import annotations

import json
from typing import Any

import httpx

from app import contracts
from app.contracts.auth import UserLoggedOut
from app.events import AppEmitter, listener
from app.events.asyncapi import asyncapi_document
from tests import factories
from tests.factories import Account, problem_code

contracts.load_all()
admin = factories.admin
employee = factories.employee
org = factories.org
CATALOG = "/api/v1/admin/events/catalog"


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def test_document_describes_events_and_listeners() -> None:
    emitter = AppEmitter()

    @listener(UserLoggedOut, delivery="background", priority=2)
    async def when_user_logged_out_forget(event: UserLoggedOut) -> None: ...

    emitter.register(when_user_logged_out_forget, module="notification")
    document = asyncapi_document(emitter, title="Workflow Hub", version="1.2.3")
    json.dumps(document)  # JSON-ready
    assert document["asyncapi"] == "3.0.0"
    assert document["info"]["version"] == "1.2.3"
    assert document["channels"]["auth.logout"]["address"] == "auth.logout"
    message = document["components"]["messages"]["UserLoggedOut"]
    assert message["name"] == "auth.logout"
    payload = _resolve(document, message["payload"]["$ref"])
    assert {"organization_id", "user_id", "session_id"} <= set(payload["properties"])
    receives = [op for op in document["operations"].values() if op["action"] == "receive"]
    assert receives == [
        {
            "action": "receive",
            "channel": {"$ref": "#/channels/auth.logout"},
            "x-module": "notification",
            "x-listener": when_user_logged_out_forget.__module__
            + ".test_document_describes_events_and_listeners.<locals>.when_user_logged_out_forget",
            "x-pattern": "auth.logout",
            "x-delivery": "background",
            "x-priority": 2,
        }
    ]
    sends = {op["x-module"] for op in document["operations"].values() if op["action"] == "send"}
    assert {"auth", "user", "hr", "procurement", "leasing"} <= sends


def test_every_reference_resolves() -> None:
    document = asyncapi_document(AppEmitter(), title="t", version="0")
    refs = _refs(document)
    assert refs
    for ref in refs:
        assert _resolve(document, ref) is not None


async def test_admins_read_the_catalog_over_rest(
    client: httpx.AsyncClient, admin: Account, employee: Account
) -> None:
    response = await client.get(CATALOG, headers=admin.headers)
    assert response.status_code == 200
    document = response.json()
    assert document["asyncapi"] == "3.0.0"
    assert "auth.logout" in document["channels"]
    listeners = {
        op["x-listener"] for op in document["operations"].values() if op["action"] == "receive"
    }
    assert any(name.startswith("app.modules.user.") for name in listeners)

    forbidden = await client.get(CATALOG, headers=employee.headers)
    assert forbidden.status_code == 403
    assert problem_code(forbidden) == "admin_required"
    assert (await client.get(CATALOG)).status_code == 401

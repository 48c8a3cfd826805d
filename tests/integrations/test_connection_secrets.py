"""An empty secret is refused, and a stored connection that no longer validates is a problem."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import JSON, column, select, table, update

from app.core.db import session_scope
from tests import factories
from tests.factories import Account, problem_code

admin = factories.admin
org = factories.org

BASE = "/api/v1/admin/integrations"
VALID: dict[str, dict[str, Any]] = {
    "oracle_fusion": {
        "base_url": "https://pod.example.com",
        "username": "integration",
        "password": "s3cret-Pa55word",
    },
    "yardi": {
        "base_url": "https://yardi.example.com/Voyager",
        "username": "iface",
        "password": "s3cret-Pa55word",
        "server_name": "srv",
        "database": "db1",
        "interface_entity": "Workflow Hub",
        "interface_license": "LICENSE-BLOB",
    },
}
SECRETS = [
    ("oracle_fusion", "password"),
    ("oracle_fusion", "jwt_private_key"),
    ("yardi", "password"),
    ("yardi", "interface_license"),
]


@pytest.mark.parametrize(("kind", "field"), SECRETS, ids=lambda v: str(v))
async def test_an_empty_secret_is_a_422_and_the_connection_stays_usable(
    client: httpx.AsyncClient, admin: Account, kind: str, field: str
) -> None:
    url = f"{BASE}/{kind}"
    first = await client.put(url, json={**VALID[kind], field: ""}, headers=admin.headers)
    assert first.status_code == 422, first.text
    assert [e["loc"] for e in first.json()["errors"]] == [["body", field]]
    assert (await client.put(url, json=VALID[kind], headers=admin.headers)).status_code == 200
    emptied = await client.put(url, json={field: ""}, headers=admin.headers)
    assert emptied.status_code == 422, emptied.text
    for _ in range(2):  # before the fix: 200 above, then every read a 500
        read = await client.get(url, headers=admin.headers)
        assert read.status_code == 200, read.text
    changed = await client.put(url, json={"enabled": False}, headers=admin.headers)
    assert changed.status_code == 200, changed.text


@pytest.mark.parametrize("kind", list(VALID))
async def test_a_stored_connection_that_does_not_validate_is_a_problem_naming_it(
    client: httpx.AsyncClient, admin: Account, kind: str
) -> None:
    url = f"{BASE}/{kind}"
    assert (await client.put(url, json=VALID[kind], headers=admin.headers)).status_code == 200
    connections = table("integration_connections", column("options", JSON))
    async with session_scope() as session:  # as an older release might have left it
        options = (await session.execute(select(connections.c.options))).scalar_one()
        await session.execute(update(connections).values(options={**options, "username": None}))
    read = await client.get(url, headers=admin.headers)
    assert read.status_code == 409, read.text
    assert problem_code(read) == "integration_connection_invalid"
    assert read.json()["integration"] == kind
    assert "username" in read.json()["detail"]
    assert "s3cret" not in read.text
    repaired = await client.put(url, json={"username": "again"}, headers=admin.headers)
    assert repaired.status_code == 200, repaired.text
    assert (await client.get(url, headers=admin.headers)).json()["settings"]["username"] == "again"

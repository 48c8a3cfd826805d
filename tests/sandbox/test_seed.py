"""The demo seed points the demo organisation's integrations at the sandbox, and follows it."""

from __future__ import annotations

import pytest

from app.core.db import Database, session_scope
from app.core.settings import reset_settings
from app.core.tenancy import ensure_organization
from app.integrations.connections.repository import get
from app.integrations.connections.schemas import IntegrationKind, OracleFusionChanges
from app.integrations.connections.service import set_connection
from app.sandbox.seed import seed_demo_connections


async def _base_urls() -> dict[str, str]:
    async with session_scope() as session:
        organization = await ensure_organization(session, "Demo")
        urls = {}
        for kind in (IntegrationKind.ORACLE_FUSION, IntegrationKind.YARDI):
            connection = await get(session, organization_id=organization.id, kind=kind.value)
            assert connection is not None
            urls[kind.value] = connection.base_url
        return urls


async def _seed() -> None:
    async with session_scope() as session:
        await seed_demo_connections(session, await ensure_organization(session, "Demo"))


async def test_the_demo_connections_follow_the_sandbox_to_a_new_port(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PORT", "8801")
    reset_settings()
    await _seed()
    assert await _base_urls() == {
        "oracle_fusion": "http://127.0.0.1:8801/sandbox/oracle",
        "yardi": "http://127.0.0.1:8801/sandbox/yardi",
    }
    monkeypatch.setenv("PORT", "8804")
    reset_settings()
    await _seed()  # make run restarted on another port, same database
    assert await _base_urls() == {
        "oracle_fusion": "http://127.0.0.1:8804/sandbox/oracle",
        "yardi": "http://127.0.0.1:8804/sandbox/yardi",
    }


async def test_a_connection_an_admin_pointed_elsewhere_is_kept(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    reset_settings()
    await _seed()
    async with session_scope() as session:
        organization = await ensure_organization(session, "Demo")
        await set_connection(
            session,
            organization_id=organization.id,
            kind=IntegrationKind.ORACLE_FUSION,
            changes=OracleFusionChanges(base_url="https://fusion.example.com"),
        )
    monkeypatch.setenv("PORT", "8805")
    reset_settings()
    await _seed()
    urls = await _base_urls()
    assert urls["oracle_fusion"] == "https://fusion.example.com"
    assert urls["yardi"] == "http://127.0.0.1:8805/sandbox/yardi"

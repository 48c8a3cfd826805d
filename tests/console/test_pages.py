"""The overview (and its live fragment), the event catalog, and what every page sends."""

from __future__ import annotations

import re

from fastapi import FastAPI

from tests.console.support import browser, console_login
from tests.console.test_deliveries import _dead_letters
from tests.factories import Account, create_org


def _figure(html: str, name: str) -> str:
    match = re.search(rf'data-figure="{name}">(?:<a [^>]*>)?(\d+)', html)
    assert match is not None, html
    return match.group(1)


async def test_the_overview_counts_the_organisations_outbox_and_refreshes_itself(
    app: FastAPI, admin: Account
) -> None:
    other = await create_org()
    await _dead_letters(app, admin.organization_id, other, other)
    async with browser(app) as client:
        await console_login(client, admin)
        page = await client.get("/console")
        assert page.status_code == 200
        assert _figure(page.text, "dead") == "1"  # not the other organisation's two
        assert _figure(page.text, "pending") == "0"
        assert 'data-refresh-url="/console/overview/live"' in page.text
        assert "/console/static/console.js" in page.text
        for integration in ("oracle_fusion", "yardi"):
            assert integration in page.text
        live = await client.get("/console/overview/live", headers={"X-Console-Fragment": "1"})
        assert live.status_code == 200
        assert _figure(live.text, "dead") == "1"
        assert "<html" not in live.text  # only the part that refreshes
        for absent in ("Inbox freshness", "Last job runs", "Pushes, last hour"):
            assert absent in live.text


async def test_the_event_catalog_lists_events_publishers_and_listeners(
    app: FastAPI, admin: Account
) -> None:
    await _dead_letters(app, admin.organization_id)
    async with browser(app) as client:
        await console_login(client, admin)
        page = await client.get("/console/events")
        assert page.status_code == 200
        assert "<code>auth.login</code>" in page.text
        assert "<code>user.created</code>" in page.text
        assert "<td>tests.console.test_deliveries.picky</td>" in page.text
        assert '<span class="pill durable">durable</span>' in page.text


async def test_pages_are_uncached_unframed_and_their_assets_are_local(
    app: FastAPI, admin: Account
) -> None:
    async with browser(app) as client:
        login = await client.get("/console/login")
        await console_login(client, admin)
        for response in (login, await client.get("/console"), await client.get("/console/events")):
            assert response.headers["cache-control"] == "no-store"
            assert response.headers["x-frame-options"] == "DENY"
            assert "script-src 'self'" in response.headers["content-security-policy"]
            assert 'name="viewport"' in response.text
            assert "http://" not in response.text
            assert "https://" not in response.text
        for asset in ("console.css", "console.js"):
            served = await client.get(f"/console/static/{asset}")
            assert served.status_code == 200
        missing = await client.get("/console/nowhere")
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("text/html")


async def test_api_errors_stay_problem_json(app: FastAPI, admin: Account) -> None:
    async with browser(app) as client:
        response = await client.get("/api/v1/admin/events/deliveries/1", headers=admin.headers)
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"

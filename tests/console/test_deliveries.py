"""The console's deliveries: dead letters, retry and discard behind a confirmation, replay."""

from __future__ import annotations

import uuid
from datetime import timedelta

from fastapi import FastAPI

from app.core.db import session_scope, utcnow
from app.events import DoNotRetry, listener
from app.events.outbox import service
from tests.console.support import browser, console_login, csrf_of, post_form
from tests.events.outbox_support import ProbeEmitted
from tests.factories import Account, create_org, settle

LISTENER = "tests.console.picky"
HOSTILE = '<script>alert("x")</script>'
refused: set[int] = set()


@listener(ProbeEmitted, delivery="durable", listener_id=LISTENER)
async def picky(event: ProbeEmitted) -> None:
    """Refuse each probe once (with markup in the error), then accept it."""
    if event.n not in refused:
        refused.add(event.n)
        raise DoNotRetry(f"order {event.n} refused: {HOSTILE}")


async def _dead_letters(app: FastAPI, *organizations: uuid.UUID) -> list[int]:
    """One dead letter per organisation, in order; returns their delivery ids."""
    refused.clear()
    app.state.emitter.register(picky, module="tests")
    for n, organization in enumerate(organizations):
        await app.state.emitter.emit_async(ProbeEmitted(organization_id=organization, n=n))
    await settle(app)
    async with session_scope() as session:
        page = await service.list_deliveries(session, status="dead", limit=200)
    return sorted(item.id for item in page.items)


async def _status(delivery_id: int) -> str:
    async with session_scope() as session:
        return (await service.get_delivery(session, delivery_id)).status


async def test_a_dead_letter_is_listed_inspected_and_retried_after_confirmation(
    app: FastAPI, admin: Account
) -> None:
    [mine] = await _dead_letters(app, admin.organization_id)
    async with browser(app) as client:
        await console_login(client, admin)
        listed = await client.get("/console/deliveries", params={"status": "dead"})
        assert listed.status_code == 200
        assert f'href="/console/deliveries/{mine}"' in listed.text
        assert LISTENER in listed.text
        by_listener = await client.get("/console/deliveries", params={"listener": "nobody"})
        assert f'href="/console/deliveries/{mine}"' not in by_listener.text
        assert "No delivery matches." in by_listener.text

        detail = await client.get(f"/console/deliveries/{mine}")
        assert detail.status_code == 200
        assert "test.outbox.probe" in detail.text
        assert "raise DoNotRetry" in detail.text  # the attempt's traceback
        # Error texts are shown, never interpreted.
        assert HOSTILE not in detail.text
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in detail.text
        assert detail.headers["content-security-policy"].startswith("default-src 'none'")

        confirm = await client.get(f"/console/deliveries/{mine}/retry")
        assert confirm.status_code == 200
        assert "Yes, retry" in confirm.text
        assert await _status(mine) == "dead"  # asking changes nothing

        done = await client.post(
            f"/console/deliveries/{mine}/retry", data={"csrf_token": csrf_of(confirm)}
        )
        assert (done.status_code, done.headers["location"]) == (
            303,
            f"/console/deliveries/{mine}?done=retry",
        )
        # Queued again (on PostgreSQL the relay, woken by the commit, may have run it already).
        assert await _status(mine) in ("pending", "running", "done")
        await settle(app)
        assert await _status(mine) == "done"
        shown = await client.get(done.headers["location"])
        assert "queued again" in shown.text
        assert "Yes, retry" not in shown.text


async def test_retry_and_discard_refuse_a_missing_or_wrong_csrf_token(
    app: FastAPI, admin: Account
) -> None:
    [mine] = await _dead_letters(app, admin.organization_id)
    async with browser(app) as client:
        await console_login(client, admin)
        for data in ({}, {"csrf_token": "0" * 64}):
            for action in ("retry", "discard"):
                response = await client.post(f"/console/deliveries/{mine}/{action}", data=data)
                assert response.status_code == 403
                assert "csrf_refused" in response.text
        assert await _status(mine) == "dead"
        # Another session's token is refused too.
        async with browser(app) as other:
            await console_login(other, admin)
            theirs = csrf_of(await other.get("/console"))
        refused_theirs = await client.post(
            f"/console/deliveries/{mine}/discard", data={"csrf_token": theirs}
        )
        assert refused_theirs.status_code == 403
        discarded = await post_form(
            client, f"/console/deliveries/{mine}/discard", f"/console/deliveries/{mine}/discard"
        )
        assert discarded.status_code == 303
        assert await _status(mine) == "discarded"
        again = await post_form(
            client, f"/console/deliveries/{mine}", f"/console/deliveries/{mine}/discard"
        )
        assert again.status_code == 409
        assert "delivery_not_discardable" in again.text


async def test_another_organisations_delivery_answers_404(app: FastAPI, admin: Account) -> None:
    other = await create_org()
    theirs, mine = await _dead_letters(app, other, admin.organization_id)
    async with browser(app) as client:
        await console_login(client, admin)
        listed = await client.get("/console/deliveries")
        assert f'href="/console/deliveries/{mine}"' in listed.text
        assert f'href="/console/deliveries/{theirs}"' not in listed.text
        token = csrf_of(listed)
        for method, path in (
            ("GET", f"/console/deliveries/{theirs}"),
            ("GET", f"/console/deliveries/{theirs}/retry"),
            ("POST", f"/console/deliveries/{theirs}/retry"),
            ("POST", f"/console/deliveries/{theirs}/discard"),
            ("GET", "/console/deliveries/987654"),
        ):
            response = await client.request(method, path, data={"csrf_token": token})
            assert response.status_code == 404, (method, path)
            assert "delivery_not_found" in response.text
            assert response.headers["content-type"].startswith("text/html")
        assert await _status(theirs) == "dead"


async def test_bad_filters_and_ids_are_422_pages(app: FastAPI, admin: Account) -> None:
    async with browser(app) as client:
        await console_login(client, admin)
        for path, params in (
            ("/console/deliveries", {"status": "lost"}),
            ("/console/deliveries", {"offset": "-1"}),
            ("/console/deliveries/0", {}),
            (f"/console/deliveries/{10**20}", {}),
            ("/console/deliveries/abc", {}),
        ):
            response = await client.get(path, params=params)
            assert response.status_code == 422, (path, params)
            assert response.headers["content-type"].startswith("text/html")
        unknown_action = await client.get("/console/deliveries/1/explode")
        assert unknown_action.status_code == 422


async def test_replay_queues_a_window_to_a_listener(app: FastAPI, admin: Account) -> None:
    [mine] = await _dead_letters(app, admin.organization_id)
    async with browser(app) as client:
        await console_login(client, admin)
        await post_form(client, f"/console/deliveries/{mine}", f"/console/deliveries/{mine}/retry")
        await settle(app)
        since = (utcnow() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S")
        replayed = await post_form(
            client,
            "/console/deliveries",
            "/console/replay",
            listener_id=LISTENER,
            pattern="test.outbox.*",
            since=since,
        )
        assert replayed.status_code == 303
        assert replayed.headers["location"] == f"/console/deliveries?listener={LISTENER}&replayed=1"
        page = await client.get(replayed.headers["location"])
        assert f"Replay queued 1 event(s) for {LISTENER}." in page.text

        bad_window = await post_form(
            client,
            "/console/deliveries",
            "/console/replay",
            listener_id=LISTENER,
            since=since,
            until=since,
        )
        assert bad_window.status_code == 422
        assert "until must be later than since" in bad_window.text
        bad_time = await post_form(
            client, "/console/deliveries", "/console/replay", listener_id=LISTENER, since="soon"
        )
        assert bad_time.status_code == 422
        unknown = await post_form(
            client, "/console/deliveries", "/console/replay", listener_id="nobody", since=since
        )
        assert unknown.status_code == 422
        assert "no durable listener" in unknown.text
        no_token = await client.post(
            "/console/replay", data={"listener_id": LISTENER, "since": since}
        )
        assert no_token.status_code == 403

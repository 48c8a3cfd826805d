"""The fake FCM's topic subscription listing (the REST method the SDK does not wrap)."""

from __future__ import annotations

import httpx

from tests.integrations.conftest import RunningSandbox

TOKEN = "device-token-0001-abcdefghijklmnop"


async def test_subscriptions_are_listed_page_by_page(sandbox: RunningSandbox) -> None:
    base = f"{sandbox.url}/fcm/v1/projects/p/registrations/{TOKEN}/topicSubscriptions"
    async with httpx.AsyncClient(headers={"Authorization": "Bearer t"}) as http:
        for topic in ("alpha", "beta", "gamma"):
            assert (await http.post(base, params={"topic_name": topic}, json={})).status_code == 200
        duplicate = await http.post(base, params={"topic_name": "beta"}, json={})
        bad = await http.post(base, params={"topic_name": "no spaces"}, json={})
        first = (await http.get(base, params={"pageSize": "2"})).json()
        second = (
            await http.get(base, params={"pageSize": "2", "pageToken": first["next_page_token"]})
        ).json()
        missing = await http.delete(f"{base}/delta")
        allowed = await http.delete(f"{base}/delta", params={"allow_missing": "true"})
        dead = await http.get(
            f"{sandbox.url}/fcm/v1/projects/p/registrations/unregistered-1234/topicSubscriptions"
        )
    assert duplicate.json()["error"]["status"] == "ALREADY_EXISTS"
    assert bad.status_code == 400
    assert [s["topic_name"] for s in first["topic_subscriptions"]] == ["alpha", "beta"]
    assert [s["topic_name"] for s in second["topic_subscriptions"]] == ["gamma"]
    assert "next_page_token" not in second
    assert first["topic_subscriptions"][0]["name"].endswith(
        f"/registrations/{TOKEN}/topicSubscriptions/alpha"
    )
    assert (missing.status_code, allowed.status_code) == (404, 200)
    assert dead.json()["error"]["details"][0]["errorCode"] == "UNREGISTERED"

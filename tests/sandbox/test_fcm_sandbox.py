"""The fake FCM: topic subscriptions (the REST method the SDK does not wrap), the messages it
accepted, and faults forced on one device token."""

from __future__ import annotations

from collections import deque

import httpx

from tests.integrations.conftest import FakeClock, RunningSandbox

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


async def test_the_messages_it_accepted_are_listed_newest_first_like_a_mail_catcher(
    sandbox: RunningSandbox, clock: FakeClock
) -> None:
    send = f"{sandbox.url}/fcm/v1/projects/p/messages:send"
    async with httpx.AsyncClient(headers={"Authorization": "Bearer t"}) as http:
        for n, token in enumerate((TOKEN, "device-token-0002-abcdefghijklmnop", TOKEN)):
            message = {
                "token": token,
                "notification": {"title": f"#{n}", "body": "body"},
                "data": {"n": str(n)},
                "android": {"collapse_key": f"c{n}"},
            }
            assert (await http.post(send, json={"message": message})).status_code == 200
            clock.advance(1)
        refused = await http.post(send, json={"message": {"token": "unregistered-0001"}})
        everything = (await http.get(f"{sandbox.url}/fcm/messages")).json()
        mine = (await http.get(f"{sandbox.url}/fcm/messages", params={"token": TOKEN})).json()
        last = (await http.get(f"{sandbox.url}/fcm/messages", params={"limit": "1"})).json()
        bad = await http.get(f"{sandbox.url}/fcm/messages", params={"limit": "0"})
    assert refused.status_code == 404
    assert everything["total"] == 3
    assert [m["title"] for m in everything["items"]] == ["#2", "#1", "#0"]
    newest = everything["items"][0]
    assert (newest["token"], newest["body"], newest["data"], newest["android"]) == (
        TOKEN,
        "body",
        {"n": "2"},
        {"collapse_key": "c2"},
    )
    assert newest["time"].endswith("Z")
    assert newest["time"] > everything["items"][1]["time"]
    assert [m["title"] for m in mine["items"]] == ["#2", "#0"]
    assert [m["title"] for m in last["items"]] == ["#2"]
    assert bad.status_code == 400


async def test_topic_subscriptions_are_visible(sandbox: RunningSandbox) -> None:
    base = f"{sandbox.url}/fcm/v1/projects/p/registrations"
    async with httpx.AsyncClient(headers={"Authorization": "Bearer t"}) as http:
        for token, topic in ((TOKEN, "news"), (TOKEN, "org-1"), ("device-token-9-abcdef", "news")):
            await http.post(f"{base}/{token}/topicSubscriptions", params={"topic_name": topic})
        everything = (await http.get(f"{sandbox.url}/fcm/subscriptions")).json()["items"]
        news = (await http.get(f"{sandbox.url}/fcm/subscriptions?topic=news")).json()["items"]
        mine = (await http.get(f"{sandbox.url}/fcm/subscriptions", params={"token": TOKEN})).json()[
            "items"
        ]
    assert len(everything) == 3
    assert sorted(s["token"] for s in news) == sorted([TOKEN, "device-token-9-abcdef"])
    assert [s["topic"] for s in mine] == ["news", "org-1"]


async def test_a_fault_forced_on_one_token_fails_only_its_messages(
    sandbox: RunningSandbox,
) -> None:
    other = "device-token-0002-abcdefghijklmnop"
    send = f"{sandbox.url}/fcm/v1/projects/p/messages:send"
    async with httpx.AsyncClient() as plain:
        forced = await plain.post(
            f"{sandbox.url}/faults",
            json={"system": "fcm", "status": 429, "token": TOKEN, "times": 2, "retry_after": 3},
        )
        assert forced.status_code == 201, forced.text
    async with httpx.AsyncClient(headers={"Authorization": "Bearer t"}) as http:
        answers = [
            await http.post(send, json={"message": {"token": token, "data": {"n": str(n)}}})
            for n, token in enumerate((TOKEN, other, TOKEN, other, TOKEN))
        ]
        listed = (await http.get(f"{sandbox.url}/fcm/messages")).json()
    assert [a.status_code for a in answers] == [429, 200, 429, 200, 200]
    assert answers[0].json()["error"]["details"][0]["errorCode"] == "QUOTA_EXCEEDED"
    assert answers[0].headers["Retry-After"] == "3"
    assert [m["token"] for m in listed["items"]] == [TOKEN, other, other]
    assert sandbox.state.faults["fcm"] == deque()

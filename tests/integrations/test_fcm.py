"""firebase-admin, unmodified, sending through the sandbox's fake FCM over real HTTP."""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator

import httpx
import pytest

from app.core.settings import FcmSettings, SandboxSettings, Settings
from app.integrations.errors import BadRequestError
from app.integrations.fcm import (
    MAX_BATCH,
    FirebasePushGateway,
    LogPushGateway,
    PushMessage,
    StaticTokenCredential,
)
from app.integrations.runtime import build_push_gateway, push_provider
from app.sandbox import Fault
from tests.integrations.conftest import RunningSandbox

PROJECT = "sandbox-project"


@pytest.fixture
async def push(sandbox: RunningSandbox) -> AsyncIterator[FirebasePushGateway]:
    gateway = FirebasePushGateway(
        credential=StaticTokenCredential(),
        project_id=PROJECT,
        endpoint=f"{sandbox.url}/fcm",
        timeout_seconds=5,
    )
    yield gateway
    await gateway.aclose()


def token(n: int) -> str:
    return f"device-token-{n:04d}-abcdefghijklmnop"


async def test_one_message_is_encoded_by_the_sdk_and_accepted(
    push: FirebasePushGateway, sandbox: RunningSandbox
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the SDK's token deprecation must not leak
        result = await push.send(
            PushMessage(
                token=token(1),
                title="New approval",
                body="Requisition 10100006",
                data={"task": "100006"},
            )
        )
    assert result.success
    assert result.message_id == f"projects/{PROJECT}/messages/1"
    (sent,) = sandbox.state.fcm.sent
    assert sent["message"] == {
        "token": token(1),
        "notification": {"title": "New approval", "body": "Requisition 10100006"},
        "data": {"task": "100006"},
    }


async def test_a_collapse_key_is_the_android_collapse_key_and_tag_and_the_apns_collapse_id(
    push: FirebasePushGateway, sandbox: RunningSandbox
) -> None:
    result = await push.send(
        PushMessage(token=token(1), title="2 new approvals", collapse_key="push-abc")
    )
    assert result.success
    (sent,) = sandbox.state.fcm.sent
    assert sent["message"]["android"] == {
        "collapse_key": "push-abc",
        "notification": {"tag": "push-abc"},
    }
    assert sent["message"]["apns"] == {"headers": {"apns-collapse-id": "push-abc"}}


async def test_a_batch_of_500_reports_each_message_and_the_dead_tokens(
    push: FirebasePushGateway, sandbox: RunningSandbox
) -> None:
    messages = [
        PushMessage(
            token=f"unregistered-{n:04d}-abcdef" if n % 100 == 7 else token(n), title=f"#{n}"
        )
        for n in range(MAX_BATCH)
    ]
    batch = await push.send_batch(messages)
    assert len(batch.results) == 500
    assert [r.index for r in batch.results] == list(range(500))
    assert batch.failure_count == 5
    assert batch.success_count == 495
    dead = batch.results[7]
    assert (dead.error_code, dead.dead, dead.success, dead.retryable) == (
        "UNREGISTERED",
        True,
        False,
        False,
    )
    assert batch.dead_tokens == tuple(
        f"unregistered-{n:04d}-abcdef" for n in (7, 107, 207, 307, 407)
    )
    assert len(sandbox.state.fcm.sent) == 495
    assert {r.message_id for r in batch.results if r.success} == {
        s["name"] for s in sandbox.state.fcm.sent
    }


async def test_a_token_the_app_uninstalled_comes_back_dead(
    push: FirebasePushGateway, sandbox: RunningSandbox
) -> None:
    sandbox.state.fcm.unregistered.add(token(9))
    result = await push.send(PushMessage(token=token(9), title="hi"))
    assert result.dead
    assert result.error_code == "UNREGISTERED"
    malformed = await push.send(PushMessage(token="bad token", title="hi"))
    assert (malformed.error_code, malformed.dead) == ("INVALID_ARGUMENT", True)


async def test_quota_errors_are_retryable_not_dead(
    push: FirebasePushGateway, sandbox: RunningSandbox
) -> None:
    sandbox.state.inject("fcm", Fault(429, retry_after=1))
    result = await push.send(PushMessage(topic="news", title="hi"))
    assert (result.error_code, result.retryable, result.dead) == ("QUOTA_EXCEEDED", True, False)


async def test_topics_subscribe_and_unsubscribe_with_dead_tokens(
    push: FirebasePushGateway, sandbox: RunningSandbox
) -> None:
    tokens = [token(1), "unregistered-0002-abcdef", token(3)]
    result = await push.subscribe(tokens, "/topics/approvals")
    assert (result.success_count, result.failure_count) == (2, 1)
    assert result.dead_tokens == ("unregistered-0002-abcdef",)
    assert result.errors[0].reason == "UNREGISTERED"
    assert set(sandbox.state.fcm.topics[token(1)]) == {"approvals"}
    again = await push.subscribe([token(1)], "approvals")  # 409 counts as success
    assert again.success_count == 1
    removed = await push.unsubscribe([token(1), token(3)], "approvals")
    assert removed.success_count == 2
    assert sandbox.state.fcm.topics[token(1)] == {}
    assert sandbox.state.fcm.topics[token(3)] == {}


async def test_bad_input_is_refused_before_sending(push: FirebasePushGateway) -> None:
    with pytest.raises(BadRequestError):
        await push.send_batch([])
    with pytest.raises(BadRequestError, match="at most 500"):
        await push.send_batch([PushMessage(token=token(n)) for n in range(MAX_BATCH + 1)])
    with pytest.raises(BadRequestError, match="topic"):
        await push.subscribe([token(1)], "not a topic!")
    with pytest.raises(ValueError, match="exactly one"):
        PushMessage(token=token(1), topic="news")
    with pytest.raises(ValueError, match="exactly one"):
        PushMessage(title="nowhere")


async def test_the_legacy_instance_id_shapes(sandbox: RunningSandbox) -> None:
    base = f"{sandbox.url}/fcm"
    headers = {"Authorization": "Bearer t", "access_token_auth": "true"}
    async with httpx.AsyncClient(headers=headers) as http:
        added = await http.post(
            f"{base}/iid/v1:batchAdd",
            json={
                "to": "/topics/news",
                "registration_tokens": [token(1), "unregistered-x-123", "b a d"],
            },
        )
        info = await http.get(f"{base}/iid/info/{token(1)}", params={"details": "true"})
        removed = await http.post(
            f"{base}/iid/v1:batchRemove",
            json={"to": "/topics/news", "registration_tokens": [token(1)]},
        )
        invalid = await http.post(
            f"{base}/iid/v1:batchAdd", json={"to": "news", "registration_tokens": []}
        )
        anonymous = await httpx.AsyncClient().post(f"{base}/iid/v1:batchAdd", json={})
    assert added.json() == {"results": [{}, {"error": "NOT_FOUND"}, {"error": "INVALID_ARGUMENT"}]}
    assert list(info.json()["rel"]["topics"]) == ["news"]
    assert removed.json() == {"results": [{}]}
    assert (invalid.status_code, invalid.json()) == (400, {"error": "INVALID_ARGUMENT"})
    assert anonymous.status_code == 401


async def test_the_fake_fcm_wants_a_bearer_token_and_a_valid_message(
    sandbox: RunningSandbox,
) -> None:
    url = f"{sandbox.url}/fcm/v1/projects/{PROJECT}/messages:send"
    async with httpx.AsyncClient() as http:
        anonymous = await http.post(url, json={"message": {"token": token(1)}})
        auth = {"Authorization": "Bearer t"}
        two_targets = await http.post(
            url, headers=auth, json={"message": {"token": token(1), "topic": "x"}}
        )
        too_big = await http.post(
            url, headers=auth, json={"message": {"token": token(1), "data": {"x": "y" * 5000}}}
        )
        not_json = await http.post(url, headers=auth, content=b"{")
        dry = await http.post(
            url, headers=auth, json={"message": {"token": token(1)}, "validate_only": True}
        )
    assert anonymous.json()["error"]["status"] == "UNAUTHENTICATED"
    assert two_targets.status_code == 400
    assert too_big.json()["error"]["details"][0]["errorCode"] == "INVALID_ARGUMENT"
    assert not_json.status_code == 400
    assert dry.status_code == 200
    assert not sandbox.state.fcm.sent


async def test_the_log_provider_sends_nothing(caplog: pytest.LogCaptureFixture) -> None:
    gateway = LogPushGateway()
    caplog.set_level("INFO")
    batch = await gateway.send_batch(
        [PushMessage(token=token(1), title="Hello"), PushMessage(topic="t")]
    )
    assert batch.success_count == 2
    assert all(r.message_id for r in batch.results)
    assert token(1) not in caplog.text
    assert "...klmnop" in caplog.text
    assert (await gateway.subscribe([token(1)], "t")).success_count == 1


def test_the_provider_follows_credentials_and_the_sandbox() -> None:
    assert (
        push_provider(
            Settings(fcm=FcmSettings(provider="auto"), sandbox=SandboxSettings(enabled=False))
        )
        == "log"
    )
    assert (
        push_provider(
            Settings(fcm=FcmSettings(provider="auto"), sandbox=SandboxSettings(enabled=True))
        )
        == "sandbox"
    )
    with_file = FcmSettings(provider="auto", credentials_file="sa.json")
    assert push_provider(Settings(fcm=with_file, sandbox=SandboxSettings(enabled=True))) == "fcm"
    assert (
        push_provider(
            Settings(fcm=FcmSettings(provider="log"), sandbox=SandboxSettings(enabled=True))
        )
        == "log"
    )
    assert isinstance(build_push_gateway(Settings(fcm=FcmSettings(provider="log"))), LogPushGateway)
    with pytest.raises(RuntimeError, match="FCM_CREDENTIALS_FILE"):
        build_push_gateway(Settings(fcm=FcmSettings(provider="fcm")))
    with pytest.raises(ValueError, match="provider"):
        FcmSettings(provider="carrier-pigeon")

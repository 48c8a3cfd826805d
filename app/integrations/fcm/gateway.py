"""Push gateways: firebase-admin (the real FCM or the sandbox's fake FCM) and the log.

:class:`FirebasePushGateway` runs firebase-admin's async paths (``send_each_async``,
``subscribe_to_topic_async``), so the SDK's encoding and error mapping are what run in tests and
in the demo. Pointed at the sandbox, it rewrites the two FCM endpoints of the SDK's messaging
service (``messages:send`` and ``registrations``), the way the SDK's emulator support does for
other products; FCM has no emulator.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
import warnings
from collections.abc import Sequence
from typing import Any, Protocol

import firebase_admin
from firebase_admin import exceptions, messaging

from app.integrations.errors import BadRequestError, UnavailableError
from app.integrations.fcm.models import (
    MAX_BATCH,
    BatchResult,
    PushMessage,
    SendResult,
    TopicError,
    TopicResult,
)

logger = logging.getLogger(__name__)

INTEGRATION = "fcm"
SEND_SLICE = 100
"""Messages of a batch in flight at once. firebase-admin sends one request per message; when
hundreds queue for httpx's 100 connections the pool slows down sharply (500 at once took
4-6 s against the sandbox, 100 at a time 0.5 s per slice)."""
DEAD_TOPIC_REASONS = frozenset({"UNREGISTERED", "NOT_FOUND", "INVALID_ARGUMENT"})
RETRYABLE_CODES = frozenset({"QUOTA_EXCEEDED", "UNAVAILABLE", "INTERNAL", "RESOURCE_EXHAUSTED"})
_FCM_CODES: tuple[tuple[type[Exception], str], ...] = (
    (messaging.UnregisteredError, "UNREGISTERED"),
    (messaging.SenderIdMismatchError, "SENDER_ID_MISMATCH"),
    (messaging.QuotaExceededError, "QUOTA_EXCEEDED"),
    (messaging.ThirdPartyAuthError, "THIRD_PARTY_AUTH_ERROR"),
)


class PushGateway(Protocol):
    """Where push notifications go."""

    name: str

    async def send(self, message: PushMessage) -> SendResult: ...

    async def send_batch(self, messages: Sequence[PushMessage]) -> BatchResult: ...

    async def subscribe(self, tokens: Sequence[str], topic: str) -> TopicResult: ...

    async def unsubscribe(self, tokens: Sequence[str], topic: str) -> TopicResult: ...

    async def aclose(self) -> None: ...


def _tail(token: str | None) -> str:
    return f"...{token[-6:]}" if token else "-"


class LogPushGateway:
    """Logs each push and drops it: the default when no FCM credentials are configured."""

    name = "log"

    async def send(self, message: PushMessage) -> SendResult:
        return (await self.send_batch([message])).results[0]

    async def send_batch(self, messages: Sequence[PushMessage]) -> BatchResult:
        _check_batch(messages)
        results = []
        for index, message in enumerate(messages):
            logger.info(
                "push (log provider) to %s: %s",
                f"topic {message.topic}" if message.topic else f"token {_tail(message.token)}",
                message.title,
            )
            results.append(
                SendResult(index=index, token=message.token, message_id=f"log/{uuid.uuid4().hex}")
            )
        return BatchResult(results=tuple(results))

    async def subscribe(self, tokens: Sequence[str], topic: str) -> TopicResult:
        logger.info("subscribe (log provider) %d tokens to %s", len(tokens), topic)
        return TopicResult(success_count=len(tokens), failure_count=0)

    async def unsubscribe(self, tokens: Sequence[str], topic: str) -> TopicResult:
        logger.info("unsubscribe (log provider) %d tokens from %s", len(tokens), topic)
        return TopicResult(success_count=len(tokens), failure_count=0)

    async def aclose(self) -> None:
        return None


class FirebasePushGateway:
    """Push through firebase-admin, with its own named ``App``."""

    def __init__(
        self,
        *,
        credential: Any,
        project_id: str | None,
        endpoint: str | None = None,
        timeout_seconds: float = 10.0,
        dry_run: bool = False,
        max_concurrency: int = 4,
        name: str = "fcm",
    ) -> None:
        options: dict[str, Any] = {"httpTimeout": timeout_seconds}
        if project_id:
            options["projectId"] = project_id
        self.name = name
        self.dry_run = dry_run
        self.app = firebase_admin.initialize_app(
            credential, options, name=f"workflow-hub-{uuid.uuid4().hex}"
        )
        self._service = messaging._get_messaging_service(self.app)
        if endpoint:
            _point_at(self._service, endpoint.rstrip("/"), self.app.project_id)
        self._slots = asyncio.Semaphore(max_concurrency)

    async def send(self, message: PushMessage) -> SendResult:
        """Send one message; its failure is in the result, not raised."""
        return (await self.send_batch([message])).results[0]

    async def send_batch(self, messages: Sequence[PushMessage]) -> BatchResult:
        """Send up to 500 messages, one result per message, in order."""
        _check_batch(messages)
        encoded = [_to_firebase(m) for m in messages]
        responses: list[messaging.SendResponse] = []
        async with self._slots:
            for start in range(0, len(encoded), SEND_SLICE):
                try:
                    part = await messaging.send_each_async(
                        encoded[start : start + SEND_SLICE], dry_run=self.dry_run, app=self.app
                    )
                except exceptions.FirebaseError as exc:
                    raise UnavailableError(str(exc), integration=INTEGRATION) from exc
                responses.extend(part.responses)
        return BatchResult(
            results=tuple(
                _result(index, message.token, item)
                for index, (message, item) in enumerate(zip(messages, responses, strict=True))
            )
        )

    async def subscribe(self, tokens: Sequence[str], topic: str) -> TopicResult:
        """Subscribe tokens to a topic; dead tokens are reported, not raised."""
        return await self._topics(tokens, topic, subscribe=True)

    async def unsubscribe(self, tokens: Sequence[str], topic: str) -> TopicResult:
        """Unsubscribe tokens from a topic; dead tokens are reported, not raised."""
        return await self._topics(tokens, topic, subscribe=False)

    async def _topics(self, tokens: Sequence[str], topic: str, *, subscribe: bool) -> TopicResult:
        call = (
            messaging.subscribe_to_topic_async
            if subscribe
            else messaging.unsubscribe_from_topic_async
        )
        token_list = list(tokens)
        async with self._slots:
            try:
                response = await call(token_list, topic, app=self.app)
            except ValueError as exc:
                raise BadRequestError(str(exc), integration=INTEGRATION) from exc
            except exceptions.FirebaseError as exc:
                raise UnavailableError(str(exc), integration=INTEGRATION) from exc
        errors = tuple(
            TopicError(
                index=e.index,
                token=token_list[e.index],
                reason=str(e.reason),
                dead=str(e.reason) in DEAD_TOPIC_REASONS,
            )
            for e in response.errors
        )
        return TopicResult(
            success_count=response.success_count,
            failure_count=response.failure_count,
            errors=errors,
        )

    async def aclose(self) -> None:
        """Close the SDK's HTTP client and delete the ``App``."""
        await self._service._async_client.aclose()
        # delete_app closes the service with asyncio.run(), which needs a thread of its own.
        await asyncio.to_thread(firebase_admin.delete_app, self.app)


def _point_at(service: Any, endpoint: str, project_id: str | None) -> None:
    if not all(hasattr(service, a) for a in ("_fcm_url", "_fcm_topic_url")):
        raise RuntimeError("this firebase-admin cannot be pointed at a local FCM (pin 7.7)")
    service._fcm_url = f"{endpoint}/v1/projects/{project_id}/messages:send"
    service._fcm_topic_url = f"{endpoint}/v1/projects/{project_id}/registrations"


def _check_batch(messages: Sequence[PushMessage]) -> None:
    if not messages:
        raise BadRequestError("a batch needs at least one message", integration=INTEGRATION)
    if len(messages) > MAX_BATCH:
        raise BadRequestError(
            f"a batch holds at most {MAX_BATCH} messages", integration=INTEGRATION
        )


def _to_firebase(message: PushMessage) -> messaging.Message:
    notification = (
        messaging.Notification(title=message.title, body=message.body)
        if message.title or message.body
        else None
    )
    with warnings.catch_warnings():
        # Since 7.5 the SDK prefers installation ids, but devices register with tokens.
        warnings.simplefilter("ignore", DeprecationWarning)
        return messaging.Message(
            token=message.token,
            topic=message.topic,
            notification=notification,
            data=message.data or None,
            android=_android(message),
            apns=_apns(message),
        )


def _android(message: PushMessage) -> messaging.AndroidConfig | None:
    if message.collapse_key is None:
        return None
    tag = messaging.AndroidNotification(tag=message.collapse_key) if message.title else None
    return messaging.AndroidConfig(collapse_key=message.collapse_key, notification=tag)


def _apns(message: PushMessage) -> messaging.APNSConfig | None:
    if message.collapse_key is None:
        return None
    return messaging.APNSConfig(headers={"apns-collapse-id": message.collapse_key})


def _result(index: int, token: str | None, item: messaging.SendResponse) -> SendResult:
    if item.success:
        return SendResult(index=index, token=token, message_id=item.message_id)
    exc = item.exception
    code = next((name for cls, name in _FCM_CODES if isinstance(exc, cls)), None)
    code = code or str(getattr(exc, "code", "UNKNOWN"))
    text = str(exc)
    dead = code in ("UNREGISTERED", "SENDER_ID_MISMATCH") or (
        code == "INVALID_ARGUMENT" and "registration token" in text.casefold()
    )
    return SendResult(
        index=index,
        token=token,
        error_code=code,
        error=text[:300],
        dead=dead,
        retryable=code in RETRYABLE_CODES,
    )

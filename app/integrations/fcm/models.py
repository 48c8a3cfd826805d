"""Push messages and their per-message outcomes."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_BATCH = 500
"""firebase-admin sends at most 500 messages per ``send_each``."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class PushMessage(_Model):
    """One notification to one device token or one topic."""

    token: str | None = None
    topic: str | None = None
    title: str | None = None
    body: str | None = None
    data: dict[str, str] = Field(default_factory=dict)
    """Key-value pairs the app reads (FCM wants strings)."""
    collapse_key: str | None = Field(default=None, max_length=64)
    """Messages sharing it replace each other on the phone: Android ``collapse_key`` and
    notification ``tag``, APNs ``apns-collapse-id`` (at most 64 bytes)."""

    @model_validator(mode="after")
    def _one_target(self) -> PushMessage:
        if (self.token is None) == (self.topic is None):
            raise ValueError("a push message has exactly one of token and topic")
        return self


class SendResult(_Model):
    """What happened to one message of a batch."""

    index: int
    token: str | None = None
    message_id: str | None = None
    error_code: str | None = None
    """FCM's error code (``UNREGISTERED``, ``QUOTA_EXCEEDED``...) when it failed."""
    error: str | None = None
    dead: bool = False
    """The token will never work again: its owner should deactivate it."""
    retryable: bool = False

    @property
    def success(self) -> bool:
        return self.message_id is not None


class BatchResult(_Model):
    results: tuple[SendResult, ...]

    @property
    def success_count(self) -> int:
        return sum(1 for r in self.results if r.success)

    @property
    def failure_count(self) -> int:
        return len(self.results) - self.success_count

    @property
    def dead_tokens(self) -> tuple[str, ...]:
        return tuple(r.token for r in self.results if r.dead and r.token)


class TopicError(_Model):
    index: int
    token: str
    reason: str
    dead: bool = False


class TopicResult(_Model):
    """The outcome of subscribing or unsubscribing tokens to a topic."""

    success_count: int
    failure_count: int
    errors: tuple[TopicError, ...] = ()

    @property
    def dead_tokens(self) -> tuple[str, ...]:
        return tuple(e.token for e in self.errors if e.dead)

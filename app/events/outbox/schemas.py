"""What operators see of deliveries (the CLI's JSON and the admin API's bodies)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from app.core.schemas import Page, RequestBody

MAX_BIGINT = 2**63 - 1
"""The largest id or offset a database integer holds; the API and the CLI refuse a larger one."""


class ErrorRecord(BaseModel):
    """One failed attempt of a delivery."""

    attempt: int
    at: datetime
    type: str
    message: str
    traceback: str | None = None


class DeliverySummary(BaseModel):
    """A delivery, as listed."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    status: str
    listener_id: str
    event_id: uuid.UUID
    event_name: str
    organization_id: uuid.UUID | None
    correlation_id: str
    ordering_key: str | None
    held: bool
    """Pending behind a dead letter of its listener and ordering key (until that one is retried
    or discarded)."""
    attempts: int
    max_attempts: int | None
    """The listener's current limit (None when no subscribed listener has this id)."""
    available_at: datetime
    lease_until: datetime | None
    worker: str | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    idempotency_key: str


class DeliveryDetail(DeliverySummary):
    """A delivery with its event and full error history."""

    occurred_at: datetime
    causation_id: uuid.UUID | None
    version: int
    payload: Any
    """The event's JSON payload; its stored text when that cannot be decoded (see the error)."""
    errors: list[ErrorRecord]


DeliveryPage = Page[DeliverySummary]
"""One page of deliveries, newest first."""


class ReplayRequest(RequestBody):
    """Replay stored events to one durable listener (the admin API's body)."""

    pattern: str = Field(min_length=1, max_length=255, examples=["user.*"])
    """An event name or pattern."""
    listener_id: str = Field(min_length=1, max_length=255)
    """The durable listener that receives the replay."""
    since: AwareDatetime
    """The oldest emission time to replay (inclusive)."""
    until: AwareDatetime | None = None
    """The newest emission time to replay (exclusive); everything after ``since`` if omitted."""

    @model_validator(mode="after")
    def _window(self) -> ReplayRequest:
        try:  # stored times are UTC: 0001-01-01T00:00+01:00 has no UTC equivalent
            self.since = self.since.astimezone(UTC)
            self.until = self.until.astimezone(UTC) if self.until is not None else None
        except OverflowError:
            raise ValueError("since and until must lie within the years 1 to 9999 in UTC") from None
        if self.until is not None and self.until <= self.since:
            raise ValueError("until must be later than since")
        return self


class ReplayResult(BaseModel):
    """What a replay queued."""

    listener_id: str
    event_names: list[str]
    queued: int

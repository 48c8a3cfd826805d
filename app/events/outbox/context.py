"""What a durable listener can read about the delivery it is running."""

from __future__ import annotations

import uuid
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DeliveryContext:
    """The delivery being run by the relay.

    Attributes:
        delivery_id: the delivery's row id (``python -m app events show ID``).
        event_id: the stored event's id (its envelope id).
        listener_id: the durable listener's stable id.
        attempt: this attempt's number, from 1.
        idempotency_key: ``"<event id>:<listener id>"``, the same on every retry and replay:
            pass it to external calls (HTTP, push) so that they happen at most once.
    """

    delivery_id: int
    event_id: uuid.UUID
    listener_id: str
    attempt: int
    idempotency_key: str


current_delivery_var: ContextVar[DeliveryContext | None] = ContextVar(
    "current_delivery", default=None
)


def current_delivery() -> DeliveryContext | None:
    """Return the durable delivery the running listener serves, or None outside the relay."""
    return current_delivery_var.get()

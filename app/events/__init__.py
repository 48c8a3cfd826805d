"""The app-wide event emitter: EventEmitter2's API, typed events, delivery modes, outbox.

Modules declare listeners with ``@listener`` and publish typed events with ``publish()``; they
never import each other.
"""

from app.events.app_emitter import (
    AppEmitter,
    DurableDeliveryUnavailable,
    EmitterNotReady,
    UnknownEvent,
)
from app.events.base import Envelope, Event, current_envelope, current_event_id, event_types
from app.events.delivery import Delivery, listener
from app.events.dispatch import current_event
from app.events.emitter import EventEmitter, Subscription
from app.events.outbox import (
    Defer,
    DeliveryContext,
    DoNotRetry,
    Retry,
    RetryAfter,
    current_delivery,
)
from app.events.retry import RetryPolicy
from app.events.runtime import get_emitter, publish

__all__ = [
    "AppEmitter",
    "Defer",
    "Delivery",
    "DeliveryContext",
    "DoNotRetry",
    "DurableDeliveryUnavailable",
    "EmitterNotReady",
    "Envelope",
    "Event",
    "EventEmitter",
    "Retry",
    "RetryAfter",
    "RetryPolicy",
    "Subscription",
    "UnknownEvent",
    "current_delivery",
    "current_envelope",
    "current_event",
    "current_event_id",
    "event_types",
    "get_emitter",
    "listener",
    "publish",
]

"""The ``@listener`` decorator: how a module declares a listener and its delivery."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from app.events.retry import RetryPolicy
from app.events.subscription import DELIVERIES, Delivery, EventKey, ListenerSpec, event_key

__all__ = ["DELIVERIES", "Delivery", "ListenerSpec", "listener", "listener_specs"]

F = TypeVar("F", bound=Callable[..., Any])

LISTENER_SPECS = "__listener_specs__"


def listener(
    event: EventKey,
    *,
    delivery: Delivery = "inline",
    priority: int = 0,
    retry: RetryPolicy | None = None,
    listener_id: str | None = None,
) -> Callable[[F], F]:
    """Declare a module listener for an event class, name or pattern.

    The function is not subscribed here (importing a module has no side effects): list it in the
    module's ``ModuleSpec.listeners`` and ``create_app()`` subscribes it.

    Args:
        event: a typed event class, an event name, or a pattern (``user.*``).
        delivery: ``inline`` (awaited by ``emit_async``), ``background`` (after the emitting
            transaction commits) or ``durable`` (outbox and relay, with retries).
        priority: higher runs first among the inline listeners of one emit.
        retry: the retry policy of a durable listener.
        listener_id: a stable id for durable deliveries (renaming a function must not orphan
            its pending deliveries).
    """
    if delivery not in DELIVERIES:
        raise ValueError(f"delivery must be one of {DELIVERIES}, not {delivery!r}")
    if retry is not None and delivery != "durable":
        raise ValueError("only durable listeners are retried")
    spec = ListenerSpec(
        event=event_key(event),
        delivery=delivery,
        priority=priority,
        retry=retry,
        listener_id=listener_id,
    )

    def decorate(fn: F) -> F:
        existing: tuple[ListenerSpec, ...] = getattr(fn, LISTENER_SPECS, ())
        setattr(fn, LISTENER_SPECS, (*existing, spec))
        return fn

    return decorate


def listener_specs(fn: Callable[..., Any]) -> tuple[ListenerSpec, ...]:
    """Return the ``@listener`` declarations of ``fn``."""
    specs: tuple[ListenerSpec, ...] = getattr(fn, LISTENER_SPECS, ())
    return specs

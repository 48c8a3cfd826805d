"""How a listener is delivered, and the ``@listener`` decorator that declares it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from app.events.emitter import EventKey, event_key

Delivery = Literal["inline", "background", "durable"]
DELIVERIES: tuple[Delivery, ...] = ("inline", "background", "durable")

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retries of a durable listener: exponential backoff with jitter, then a dead letter.

    Attributes:
        max_attempts: attempts before the delivery becomes a dead letter.
        base_delay: seconds before the first retry; doubled on each attempt.
        max_delay: the cap of one delay, in seconds.
        jitter: the fraction of each delay drawn at random: the delay after attempt ``n`` is
            uniform in ``[d * (1 - jitter), d]`` with ``d = min(max_delay, base_delay * 2**(n-1))``,
            so that retries of many deliveries spread out instead of arriving together.
    """

    max_attempts: int = 8
    base_delay: float = 1.0
    max_delay: float = 300.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if (
            self.max_attempts < 1
            or self.base_delay < 0
            or self.max_delay < self.base_delay
            or not 0 <= self.jitter <= 1
        ):
            raise ValueError(f"invalid retry policy: {self}")

    def delay(self, attempt: int, rand: float) -> float:
        """Return the seconds to wait after failed attempt ``attempt`` (1-based).

        Args:
            attempt: the number of the attempt that failed, from 1.
            rand: a number in ``[0, 1)``, the jitter's draw (``random.random()``).

        Returns:
            The delay in seconds, at most ``max_delay``.
        """
        exponent = min(max(attempt, 1) - 1, 64)  # 2**64 seconds is past any cap
        ceiling = min(self.max_delay, self.base_delay * 2.0**exponent)
        return ceiling * (1 - self.jitter * rand)


@dataclass(frozen=True, slots=True)
class ListenerSpec:
    """What ``@listener`` records on a function; ``create_app()`` subscribes from it."""

    event: str
    delivery: Delivery = "inline"
    priority: int = 0
    retry: RetryPolicy | None = None
    listener_id: str | None = None
    """A stable id for durable deliveries (defaults to the function's qualified name)."""


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

"""Subscriptions: what a listener is subscribed to, and how it is delivered (its typed spec)."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

from app.events.retry import RetryPolicy

Listener = Callable[..., Any]
F = TypeVar("F", bound=Listener)
EventKey = Any
"""An event name or pattern, or a class with a string ``name`` (a typed event)."""

Delivery = Literal["inline", "background", "durable"]
DELIVERIES: tuple[Delivery, ...] = ("inline", "background", "durable")


@dataclass(frozen=True, slots=True)
class ListenerSpec:
    """How one listener is subscribed: what ``@listener`` declares, and what a subscription keeps.

    Attributes:
        event: the event name or pattern.
        delivery: ``inline``, ``background`` or ``durable`` (see ``app.events.listener``).
        priority: higher runs first among the listeners of one emit.
        retry: the retry policy of a durable listener.
        listener_id: the stable id of a durable listener (its deliveries are stored under it).
        module: the module that subscribed it, for the catalog.
        call_soon: run the listener later on the event loop, after the emit returned.
        promisify: run the listener as a coroutine even when it returns a plain value.
    """

    event: str
    delivery: Delivery = "inline"
    priority: int = 0
    retry: RetryPolicy | None = None
    listener_id: str | None = None
    module: str | None = None
    call_soon: bool = False
    promisify: bool = False


def qualified_name(fn: Listener) -> str:
    """Return ``module.qualname`` of a listener, for logs and the catalog."""
    target = getattr(fn, "func", fn)  # functools.partial
    module = getattr(target, "__module__", None) or type(target).__module__
    name = getattr(target, "__qualname__", None) or type(target).__qualname__
    return f"{module}.{name}"


def event_key(event: EventKey) -> str:
    """Return the name of an event given as a string, or as a class or instance with ``name``."""
    if isinstance(event, str):
        return event
    name = getattr(event, "name", None)
    if isinstance(name, str):
        return name
    raise TypeError(f"an event is a name or a typed event, not {type(event).__name__}")


def _is_async_callable(fn: Listener) -> bool:
    target = getattr(fn, "func", fn)
    return inspect.iscoroutinefunction(target) or inspect.iscoroutinefunction(
        getattr(target, "__call__", None)  # noqa: B004 - async callable objects
    )


def _as_coroutine(fn: Listener, *, later: bool) -> Listener:
    """Wrap ``fn`` so that calling it returns a coroutine (``promisify``, ``call_soon``)."""

    async def run(*args: Any) -> Any:
        if later:
            await asyncio.sleep(0)  # the emit returns before the listener runs
        result = fn(*args)
        if inspect.isawaitable(result):
            result = await result
        return result

    return run


class _Owner(Protocol):
    def _remove(self, sub: Subscription) -> bool: ...


class Subscription:
    """A listener subscribed to an event or pattern; ``off()`` unsubscribes it.

    ``spec`` says how it is delivered; ``event`` and ``priority`` repeat it for the hot path.
    ``listener`` is the function as subscribed; ``handler`` is what an emit calls (the same
    function, or a coroutine wrapper of it for ``call_soon`` and ``promisify``).
    """

    __slots__ = (
        "_emitter",
        "active",
        "event",
        "handler",
        "is_any",
        "is_async",
        "listener",
        "name",
        "priority",
        "remaining",
        "seq",
        "spec",
    )

    def __init__(
        self,
        emitter: _Owner,
        spec: ListenerSpec,
        listener: Listener,
        *,
        seq: int,
        remaining: int | None,
        is_any: bool = False,
    ) -> None:
        self._emitter = emitter
        self.spec = spec
        self.event = spec.event
        self.priority = spec.priority
        self.listener = listener
        self.handler = (
            _as_coroutine(listener, later=spec.call_soon)
            if spec.call_soon or spec.promisify
            else listener
        )
        self.seq = seq
        self.remaining = remaining
        self.is_any = is_any
        self.is_async = _is_async_callable(self.handler)
        self.name = qualified_name(listener)
        self.active = True

    def off(self) -> bool:
        """Unsubscribe; return False when it was already off."""
        return self._emitter._remove(self)

    def __repr__(self) -> str:
        return f"<Subscription {self.event!r} -> {self.name} priority={self.priority}>"


def _order(sub: Subscription) -> tuple[int, int]:
    return (-sub.priority, sub.seq)

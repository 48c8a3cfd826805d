"""Subscriptions: what a listener is subscribed to, and the context it runs in."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from contextvars import Context, ContextVar, copy_context
from typing import Any, Protocol, TypeVar

from app.core.db import current_session_var

Listener = Callable[..., Any]
F = TypeVar("F", bound=Listener)
EventKey = Any
"""An event name or pattern, or a class with a string ``name`` (a typed event)."""

_current_event: ContextVar[str | None] = ContextVar("current_event", default=None)


def current_event() -> str | None:
    """Return the concrete event name that fired the running listener (EE2's ``this.event``)."""
    return _current_event.get()


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


class _Owner(Protocol):
    def _remove(self, sub: Subscription) -> bool: ...


class Subscription:
    """A listener subscribed to an event or pattern; ``off()`` unsubscribes it."""

    __slots__ = (
        "_emitter",
        "active",
        "event",
        "is_any",
        "is_async",
        "listener",
        "name",
        "options",
        "priority",
        "remaining",
        "seq",
    )

    def __init__(
        self,
        emitter: _Owner,
        event: str,
        listener: Listener,
        *,
        priority: int,
        seq: int,
        remaining: int | None,
        is_any: bool = False,
        options: dict[str, Any] | None = None,
    ) -> None:
        self._emitter = emitter
        self.event = event
        self.listener = listener
        self.priority = priority
        self.seq = seq
        self.remaining = remaining
        self.is_any = is_any
        self.is_async = _is_async_callable(listener)
        self.name = qualified_name(listener)
        self.options: dict[str, Any] = options or {}
        self.active = True

    def off(self) -> bool:
        """Unsubscribe; return False when it was already off."""
        return self._emitter._remove(self)

    def __repr__(self) -> str:
        return f"<Subscription {self.event!r} -> {self.name} priority={self.priority}>"


def detached_context() -> Context:
    """Copy the current context for a task that outlives the caller's transaction."""
    context = copy_context()
    context.run(current_session_var.set, None)
    return context


def _order(sub: Subscription) -> tuple[int, int]:
    return (-sub.priority, sub.seq)

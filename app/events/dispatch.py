"""The one dispatch path: how the listeners of one emit are called, awaited and isolated.

Both emitters first route an emit to an ordered tuple of subscriptions; then one of these
functions acts on it. They own the current-event context variable (EventEmitter2's
``this.event``), so every way a listener runs sets it the same way.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager
from contextvars import ContextVar
from typing import Any, Protocol

from app.events.subscription import Subscription

current_event_var: ContextVar[str | None] = ContextVar("current_event", default=None)

Isolation = Callable[[], AbstractAsyncContextManager[Any]]
"""Opens the scope one awaited listener runs in (a savepoint of the emitting transaction)."""


def current_event() -> str | None:
    """Return the concrete event name that fired the running listener (EE2's ``this.event``)."""
    return current_event_var.get()


class Host(Protocol):
    """What dispatch needs from its emitter: claim a call, report a failure, start a task."""

    def _take(self, sub: Subscription) -> bool: ...

    def _failed(self, sub: Subscription, event: str, exc: Exception) -> None: ...

    def _spawn(self, sub: Subscription, event: str, awaitable: Awaitable[Any]) -> None: ...


def call(sub: Subscription, event: str, args: tuple[Any, ...]) -> Any:
    """Call ``sub``'s listener with the emitted arguments (a catch-all gets the name first)."""
    return sub.handler(*((event, *args) if sub.is_any else args))


def fire(host: Host, event: str, args: tuple[Any, ...], subs: Iterable[Subscription]) -> bool:
    """Run the listeners of a synchronous ``emit``; return True when at least one ran.

    Sync listeners run now, in order. An async listener's awaitable becomes a task the host
    tracks. A raising listener is reported to the host and never stops the others.
    """
    token = current_event_var.set(event)
    try:
        ran = False
        for sub in subs:
            if not host._take(sub):
                continue
            ran = True
            try:  # call() inlined: this loop is the emit's hot path
                result = sub.handler(*((event, *args) if sub.is_any else args))
            except Exception as exc:
                host._failed(sub, event, exc)
                continue
            if result is not None and (sub.is_async or inspect.isawaitable(result)):
                host._spawn(sub, event, result)
        return ran
    finally:
        current_event_var.reset(token)


async def collect(
    host: Host,
    event: str,
    args: tuple[Any, ...],
    subs: Iterable[Subscription],
    *,
    raise_errors: bool,
    sequential: bool,
    isolation: Isolation | None = None,
) -> list[Any]:
    """Run the listeners of ``emit_async`` and await the async ones; return their results.

    Args:
        host: the emitter.
        event: the concrete event name.
        args: the emitted arguments.
        subs: the subscriptions, in order.
        raise_errors: raise an ``ExceptionGroup`` of the failures once every listener ran.
        sequential: await each listener before calling the next, instead of together.
        isolation: await each listener inside this scope, one by one (implies sequential).

    Returns:
        The results in listener order (None for a failed listener).
    """
    token = current_event_var.set(event)
    results: list[Any] = []
    errors: list[Exception] = []
    pending: list[tuple[int, Subscription, Awaitable[Any]]] = []
    try:
        for sub in subs:
            if not host._take(sub):
                continue
            try:
                result = sub.handler(*((event, *args) if sub.is_any else args))
                if sub.is_async or (result is not None and inspect.isawaitable(result)):
                    if isolation is not None:
                        async with isolation():
                            result = await result
                    elif sequential:
                        result = await result
                    else:
                        pending.append((len(results), sub, result))
                        result = None
            except Exception as exc:
                host._failed(sub, event, exc)
                errors.append(exc)
                result = None
            results.append(result)
        if pending:
            outcomes = await asyncio.gather(*(p[2] for p in pending), return_exceptions=True)
            for (index, sub, _), outcome in zip(pending, outcomes, strict=True):
                if isinstance(outcome, Exception):
                    host._failed(sub, event, outcome)
                    errors.append(outcome)
                elif isinstance(outcome, BaseException):
                    raise outcome
                else:
                    results[index] = outcome
    finally:
        current_event_var.reset(token)
    if errors and raise_errors:
        raise ExceptionGroup(f"{len(errors)} listener(s) failed on {event!r}", errors)
    return results


async def run(sub: Subscription, event: str, args: tuple[Any, ...]) -> Any:
    """Run one listener to its end and return its result; its error propagates to the caller.

    Background tasks and durable deliveries run their listener through this.
    """
    token = current_event_var.set(event)
    try:
        result = call(sub, event, args)
        if inspect.isawaitable(result):
            result = await result
        return result
    finally:
        current_event_var.reset(token)

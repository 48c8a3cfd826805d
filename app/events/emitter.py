"""The raw emitter: EventEmitter2's API in Python, with isolated errors and tracked tasks.

``EventEmitter`` is permissive (any string is an event name), as EventEmitter2 is. The
application uses :class:`~app.events.app_emitter.AppEmitter`, which adds typed events, strict
names and delivery modes on top of it.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
from collections.abc import Awaitable, Callable
from contextvars import Context, copy_context
from typing import Any, overload

from app.core.context import get_correlation_id
from app.events import dispatch
from app.events.dispatch import current_event
from app.events.patterns import is_pattern, matches
from app.events.subscription import (
    EventKey,
    F,
    Listener,
    ListenerSpec,
    Subscription,
    _order,
    event_key,
    qualified_name,
)

__all__ = [
    "EventEmitter",
    "EventKey",
    "Listener",
    "Subscription",
    "current_event",
    "event_key",
    "qualified_name",
]

logger = logging.getLogger("app.events")

_MATCH_CACHE_LIMIT = 4096
_ANY_SPEC = ListenerSpec(event="**")


class EventEmitter:
    """EventEmitter2's API: wildcards, once/many, on_any, emit/emit_async, wait_for.

    Args:
        wildcard: treat ``*`` and ``**`` segments as wildcards.
        delimiter: the namespace separator.
        max_listeners: warn once per event past this many listeners (0: no limit).
    """

    def __init__(
        self, *, wildcard: bool = True, delimiter: str = ".", max_listeners: int = 10
    ) -> None:
        self.wildcard = wildcard
        self.delimiter = delimiter
        self.max_listeners = max_listeners
        self._exact: dict[str, list[Subscription]] = {}
        self._patterns: dict[str, list[Subscription]] = {}
        self._any: list[Subscription] = []
        self._cache: dict[str, tuple[Subscription, ...]] = {}
        self._seq = itertools.count(1)
        self._prepend_seq = itertools.count(-1, -1)
        self._warned: set[str] = set()
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- subscribing -------------------------------------------------------------------------

    @overload
    def on(
        self, event: EventKey, listener: None = None, *, prepend: bool = False, priority: int = 0
    ) -> Callable[[F], F]: ...

    @overload
    def on(
        self, event: EventKey, listener: Listener, *, prepend: bool = False, priority: int = 0
    ) -> Subscription: ...

    def on(
        self,
        event: EventKey,
        listener: Listener | None = None,
        *,
        prepend: bool = False,
        priority: int = 0,
    ) -> Subscription | Callable[[F], F]:
        """Subscribe ``listener`` to an event name or pattern; without it, act as a decorator.

        Args:
            event: an event name, or a pattern with ``*`` / ``**`` segments.
            listener: a sync or async callable receiving the emitted arguments.
            prepend: run before the listeners of the same priority already subscribed.
            priority: higher runs first; ties keep subscription order.

        Returns:
            The subscription handle (or, as a decorator, the function unchanged).
        """
        if listener is None:

            def decorate(fn: F) -> F:
                self._add(self._spec(event, priority), fn, prepend=prepend)
                return fn

            return decorate
        return self._add(self._spec(event, priority), listener, prepend=prepend)

    add_listener = on

    def prepend_listener(
        self, event: EventKey, listener: Listener, *, priority: int = 0
    ) -> Subscription:
        """Subscribe ``listener`` ahead of the listeners already there."""
        return self._add(self._spec(event, priority), listener, prepend=True)

    def once(
        self, event: EventKey, listener: Listener, *, prepend: bool = False, priority: int = 0
    ) -> Subscription:
        """Subscribe ``listener`` for one call."""
        return self._add(self._spec(event, priority), listener, prepend=prepend, remaining=1)

    def many(
        self,
        event: EventKey,
        n: int,
        listener: Listener,
        *,
        prepend: bool = False,
        priority: int = 0,
    ) -> Subscription:
        """Subscribe ``listener`` for ``n`` calls."""
        if n < 1:
            raise ValueError("many() needs n >= 1")
        return self._add(self._spec(event, priority), listener, prepend=prepend, remaining=n)

    def on_any(self, listener: Listener, *, prepend: bool = False) -> Subscription:
        """Subscribe ``listener(event_name, *args)`` to every event."""
        seq = next(self._prepend_seq) if prepend else next(self._seq)
        sub = Subscription(self, _ANY_SPEC, listener, seq=seq, remaining=None, is_any=True)
        self._any.append(sub)
        self._any.sort(key=_order)
        self._invalidate()
        return sub

    def off_any(self, listener: Listener | None = None) -> None:
        """Remove one catch-all listener, or all of them."""
        for sub in reversed(self._any):
            if listener is None or sub.listener == listener:
                self._remove(sub)
                if listener is not None:
                    return

    def off(self, event: EventKey, listener: Listener) -> bool:
        """Remove the most recent subscription of ``listener`` to exactly ``event``."""
        bucket = self._bucket(event_key(event), create=False)
        for sub in reversed(bucket or []):
            if sub.listener == listener:
                return self._remove(sub)
        return False

    remove_listener = off

    def remove_all_listeners(self, event: EventKey | None = None) -> None:
        """Remove the listeners of exactly ``event``, or every listener when it is None."""
        if event is None:
            subs = [s for b in (*self._exact.values(), *self._patterns.values()) for s in b]
            subs.extend(self._any)
        else:
            subs = list(self._bucket(event_key(event), create=False) or [])
        for sub in subs:
            self._remove(sub)

    # -- introspection -----------------------------------------------------------------------

    def listeners(self, event: EventKey) -> list[Listener]:
        """Return the listeners an emit of ``event`` would call, in order (not catch-alls)."""
        return [s.listener for s in self._introspect(event_key(event)) if not s.is_any]

    def listeners_any(self) -> list[Listener]:
        """Return the catch-all listeners."""
        return [s.listener for s in self._any]

    def event_names(self) -> list[str]:
        """Return the names and patterns that have listeners."""
        return [*self._exact, *self._patterns]

    def has_listeners(self, event: EventKey | None = None) -> bool:
        """Tell whether an emit of ``event`` would reach a listener (any event when None)."""
        if event is None:
            return bool(self._exact or self._patterns or self._any)
        return bool(self._introspect(event_key(event)))

    def listener_count(self, event: EventKey) -> int:
        """Return how many listeners an emit of ``event`` would call (not catch-alls)."""
        return sum(1 for s in self._introspect(event_key(event)) if not s.is_any)

    def subscriptions(self) -> list[Subscription]:
        """Return every subscription, catch-alls first, then by event and order."""
        subs = list(self._any)
        for bucket in (*self._exact.values(), *self._patterns.values()):
            subs.extend(bucket)
        return subs

    # -- emitting ----------------------------------------------------------------------------

    def emit(self, event: EventKey, *args: Any) -> bool:
        """Call every listener of ``event``; return True when at least one ran.

        Sync listeners run inline, in order. Async listeners are started as tracked tasks (see
        :meth:`drain`). A raising listener is logged and never stops the others. A typed event
        instance may be given instead of a name: it is then the listeners' first argument.
        """
        if not isinstance(event, str):
            args = (event, *args)
            event = event_key(event)
        subs = self._cache.get(event)
        if subs is None:
            subs = self._resolve(event)
        if not subs:
            return False
        return dispatch.fire(self, event, args, subs)

    async def emit_async(
        self,
        event: EventKey,
        *args: Any,
        raise_errors: bool = False,
        sequential: bool = False,
    ) -> list[Any]:
        """Call every listener of ``event`` and await the async ones; return their results.

        Args:
            event: the concrete event name, or a typed event instance.
            args: the arguments given to each listener.
            raise_errors: after every listener has run, raise an ``ExceptionGroup`` of the
                failures instead of only logging them.
            sequential: await the listeners one by one, in order, instead of concurrently.

        Returns:
            The listeners' return values in listener order (None for a failed listener).
        """
        if not isinstance(event, str):
            args = (event, *args)
            event = event_key(event)
        subs = self._cache.get(event)
        if subs is None:
            subs = self._resolve(event)
        if not subs:
            return []
        return await dispatch.collect(
            self, event, args, subs, raise_errors=raise_errors, sequential=sequential
        )

    async def wait_for(
        self,
        event: EventKey,
        *,
        timeout: float | None = None,
        predicate: Callable[..., bool] | None = None,
    ) -> Any:
        """Wait for the next emit of ``event`` whose arguments satisfy ``predicate``.

        Returns:
            The single emitted argument, or a tuple when several were emitted.

        Raises:
            TimeoutError: when ``timeout`` seconds pass first. Cancelling the waiting task
                unsubscribes it as well.
        """
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        def resolve(*args: Any) -> None:
            if future.done():
                return
            if predicate is not None and not predicate(*args):
                return
            future.set_result(args[0] if len(args) == 1 else args)

        sub = self._add(self._spec(event, 0), resolve, prepend=False)
        try:
            async with asyncio.timeout(timeout):
                return await future
        finally:
            sub.off()

    async def drain(self, timeout: float | None = None) -> bool:
        """Wait for the tasks started by emits (including tasks they start).

        Returns:
            True when all finished, False when ``timeout`` passed first.
        """
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while self._tasks:
            remaining = None if deadline is None else max(0.0, deadline - loop.time())
            _, pending = await asyncio.wait(set(self._tasks), timeout=remaining)
            if pending and deadline is not None and loop.time() >= deadline:
                return False
        return True

    async def close(self, timeout: float | None = None) -> None:
        """Drain tracked tasks, cancel what outlives ``timeout``, and remove every listener."""
        if not await self.drain(timeout):
            stuck = list(self._tasks)
            logger.warning("cancelling %d listener task(s) still running at shutdown", len(stuck))
            for task in stuck:
                task.cancel()
            await asyncio.gather(*stuck, return_exceptions=True)
        self.remove_all_listeners()

    # -- internals ---------------------------------------------------------------------------

    def _bucket(self, event: str, *, create: bool) -> list[Subscription] | None:
        table = (
            self._patterns if self.wildcard and is_pattern(event, self.delimiter) else self._exact
        )
        bucket = table.get(event)
        if bucket is None and create:
            bucket = table[event] = []
        return bucket

    def _spec(self, event: EventKey, priority: int) -> ListenerSpec:
        return ListenerSpec(event=event_key(event), priority=priority)

    def _add(
        self,
        spec: ListenerSpec,
        listener: Listener,
        *,
        prepend: bool,
        remaining: int | None = None,
    ) -> Subscription:
        if not callable(listener):
            raise TypeError(f"listener must be callable, not {type(listener).__name__}")
        event = spec.event
        if not isinstance(event, str) or not event:
            raise TypeError("event must be a non-empty string")
        seq = next(self._prepend_seq) if prepend else next(self._seq)
        sub = Subscription(self, spec, listener, seq=seq, remaining=remaining)
        bucket = self._bucket(event, create=True)
        assert bucket is not None
        bucket.append(sub)
        bucket.sort(key=_order)
        self._invalidate()
        if self.max_listeners and len(bucket) > self.max_listeners and event not in self._warned:
            self._warned.add(event)
            logger.warning(
                "possible listener leak: %d listeners on %r (max_listeners=%d)",
                len(bucket),
                event,
                self.max_listeners,
            )
        return sub

    def _remove(self, sub: Subscription) -> bool:
        if not sub.active:
            return False
        sub.active = False
        if sub.is_any:
            self._any.remove(sub)
        else:
            table = self._patterns if sub.event in self._patterns else self._exact
            bucket = table.get(sub.event, [])
            if sub in bucket:
                bucket.remove(sub)
            if not bucket:
                table.pop(sub.event, None)
        self._invalidate()
        return True

    def _invalidate(self) -> None:
        """Forget the cached routes after a subscription change."""
        self._cache.clear()

    def _check_name(self, event: str) -> None:
        if not isinstance(event, str) or not event:
            raise TypeError("event must be a non-empty string")
        if self.wildcard and "*" in event:
            raise ValueError(f"cannot emit {event!r}: a concrete event name has no wildcard")

    def _resolve(self, event: str) -> tuple[Subscription, ...]:
        """Compute (and cache) the subscriptions an emit of ``event`` reaches, in order."""
        self._check_name(event)
        found = list(self._exact.get(event, ()))
        if self.wildcard:
            for pattern, bucket in self._patterns.items():
                if matches(pattern, event, self.delimiter):
                    found.extend(bucket)
        found.sort(key=_order)
        subs = (*self._any, *found)
        if len(self._cache) >= _MATCH_CACHE_LIMIT:
            self._invalidate()
        self._cache[event] = subs
        return subs

    def _matching(self, event: str) -> tuple[Subscription, ...]:
        return self._cache.get(event) or self._resolve(event)

    def _introspect(self, event: str) -> tuple[Subscription, ...]:
        """A concrete name: what an emit would reach. A pattern: what is subscribed to it."""
        if self.wildcard and is_pattern(event, self.delimiter):
            return tuple(self._patterns.get(event, ()))
        return self._matching(event)

    def _take(self, sub: Subscription) -> bool:
        """Claim one call of ``sub``: False when it is off or used up (once/many)."""
        if not sub.active:
            return False
        if sub.remaining is not None:
            sub.remaining -= 1
            if sub.remaining <= 0:
                self._remove(sub)
        return True

    def _spawn(self, sub: Subscription, event: str, awaitable: Awaitable[Any]) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            if inspect.iscoroutine(awaitable):
                awaitable.close()
            error = RuntimeError(f"async listener {sub.name} needs a running event loop")
            self._failed(sub, event, error)
            return
        task = loop.create_task(_await(awaitable), context=self._task_context())
        self._track(task, sub, event)

    def _task_context(self) -> Context:
        """The context a listener task starts in: a copy of the emitter's caller's."""
        return copy_context()

    def _track(self, task: asyncio.Task[Any], sub: Subscription, event: str) -> None:
        self._tasks.add(task)

        def done(finished: asyncio.Task[Any]) -> None:
            self._tasks.discard(finished)
            if finished.cancelled():
                return
            exc = finished.exception()
            if isinstance(exc, Exception):
                self._failed(sub, event, exc)

        task.add_done_callback(done)

    def _failed(self, sub: Subscription, event: str, exc: Exception) -> None:
        correlation_id = get_correlation_id()
        logger.error(
            "listener %s failed on %s: %s: %s",
            sub.name,
            event,
            type(exc).__name__,
            exc,
            exc_info=exc,
            extra={"event": event, "listener": sub.name, "correlation_id": correlation_id or "-"},
        )
        self._on_failure(sub, event, exc)

    def _on_failure(self, sub: Subscription, event: str, exc: Exception) -> None:
        """Hook for subclasses (metrics); the raw emitter only logs."""


async def _await(awaitable: Awaitable[Any]) -> Any:
    return await awaitable

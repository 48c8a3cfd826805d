"""The raw emitter: EventEmitter2's API in Python, with isolated errors and tracked tasks.

``EventEmitter`` is permissive (any string is an event name), as EventEmitter2 is. The
application uses :class:`~app.events.app_emitter.AppEmitter`, which adds typed events, strict
names and delivery modes on top of it. ``docs/emitter.md`` lists where we differ from
EventEmitter2, and why.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
from collections.abc import Awaitable, Callable, Generator, Iterable, Mapping
from contextvars import Context, copy_context
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, cast, overload

from app.core.context import get_correlation_id
from app.events.dispatch import collect, current_event, fire
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
    "RelayedEvent",
    "Subscription",
    "UnhandledErrorEvent",
    "Waiting",
    "current_event",
    "event_key",
    "qualified_name",
]

logger = logging.getLogger("app.events")

_MATCH_CACHE_LIMIT = 4096
_ANY_SPEC = ListenerSpec(event="**")
ERROR = "error"
"""The special event: emitted with nobody listening, its error is raised (EventEmitter2's rule)."""
NEW_LISTENER, REMOVE_LISTENER, REMOVE_LISTENER_ANY = (
    "newListener",
    "removeListener",
    "removeListenerAny",
)


class UnhandledErrorEvent(RuntimeError):
    """An ``error`` event nobody listened to, emitted with something that is not an exception.

    Attributes:
        argument: what was emitted (None when nothing was).
    """

    def __init__(self, argument: Any = None) -> None:
        self.argument = argument
        super().__init__(f"Uncaught, unspecified 'error' event: {argument!r}")


@dataclass(slots=True)
class RelayedEvent:
    """One event of another emitter on its way through :meth:`EventEmitter.listen_to`.

    A reducer may change ``name`` and ``args``, or return False to drop the event.

    Attributes:
        name: the name it is emitted under here.
        original: its name on the source emitter.
        args: its arguments.
    """

    name: str
    original: str
    args: list[Any]


Reducer = Callable[[RelayedEvent], Any]


@dataclass(frozen=True, slots=True)
class _Relay:
    target: Any
    original: str
    handler: Callable[..., None]
    unsubscribe: Callable[[str, Callable[..., None]], Any]


class Waiting(asyncio.Future[Any]):
    """What :meth:`EventEmitter.wait_for` returns: a future that is listening already.

    Cancelling it (or the task awaiting it) unsubscribes it at once. It is also a coroutine,
    so ``asyncio.create_task(emitter.wait_for(...))`` works as it always did.
    """

    def __init__(self, *, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop=loop)
        self._release: list[Callable[[], Any]] = []
        self._steps: Generator[Any, None, Any] | None = None

    def settle(self, result: Any = None, error: BaseException | None = None) -> None:
        """Resolve (or reject with ``error``) unless done, and stop listening."""
        if not self.done():
            if error is None:
                self.set_result(result)
            else:
                self.set_exception(error)
        self._unsubscribe()

    def cancel(self, msg: Any | None = None) -> bool:
        cancelled = super().cancel(msg)
        self._unsubscribe()
        return cancelled

    def on_settled(self, undo: Callable[[], Any]) -> None:
        """Call ``undo`` once it is resolved, rejected or cancelled (to unsubscribe)."""
        self._release.append(undo)

    def _unsubscribe(self) -> None:
        release, self._release = self._release, []
        for undo in release:
            undo()

    # The coroutine protocol, driven by a task: each step is a step of awaiting the future.

    def send(self, value: None) -> Any:
        return self._iterate().send(value)

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        if val is None and tb is None:
            return self._iterate().throw(typ)
        return self._iterate().throw(typ, val, tb)

    def close(self) -> None:
        if self._steps is not None:
            self._steps.close()

    def _iterate(self) -> Generator[Any, None, Any]:
        if self._steps is None:
            self._steps = self.__await__()
        return self._steps


class EventEmitter:
    """EventEmitter2's API: wildcards, once/many, on_any, emit/emit_async, wait_for.

    Args:
        wildcard: treat ``*`` and ``**`` segments as wildcards.
        delimiter: the namespace separator.
        max_listeners: warn once per event past this many listeners (0: no limit; None: the
            class-wide :attr:`default_max_listeners`, read when a listener is added).
        new_listener: emit ``newListener(event, listener)`` before a listener is added.
        remove_listener: emit ``removeListener(event, listener)`` after a listener is removed,
            and ``removeListenerAny(listener)`` after a catch-all is.
        ignore_errors: treat ``error`` as a plain event (no raise when nobody listens).
    """

    default_max_listeners: ClassVar[int] = 10
    """The class-wide default of ``max_listeners`` (EventEmitter2's ``defaultMaxListeners``)."""

    def __init__(
        self,
        *,
        wildcard: bool = True,
        delimiter: str = ".",
        max_listeners: int | None = None,
        new_listener: bool = False,
        remove_listener: bool = False,
        ignore_errors: bool = False,
    ) -> None:
        if not delimiter:
            raise ValueError("the delimiter is a non-empty string")
        self.wildcard = wildcard
        self.delimiter = delimiter
        self._max_listeners = max_listeners
        self._new_listener = new_listener
        self._remove_listener = remove_listener
        self.ignore_errors = ignore_errors
        self._exact: dict[str, list[Subscription]] = {}
        self._patterns: dict[str, list[Subscription]] = {}
        self._any: list[Subscription] = []
        self._cache: dict[str, tuple[Subscription, ...]] = {}
        self._seq = itertools.count(1)
        self._prepend_seq = itertools.count(-1, -1)
        self._warned: set[str] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._relays: list[_Relay] = []

    @property
    def max_listeners(self) -> int:
        """Warn once per event past this many listeners (0: no limit)."""
        if self._max_listeners is None:
            return type(self).default_max_listeners
        return self._max_listeners

    @max_listeners.setter
    def max_listeners(self, value: int | None) -> None:
        self._max_listeners = value

    # -- subscribing -------------------------------------------------------------------------

    @overload
    def on(
        self,
        event: EventKey,
        listener: None = None,
        *,
        prepend: bool = False,
        priority: int = 0,
        call_soon: bool = False,
        promisify: bool = False,
    ) -> Callable[[F], F]: ...

    @overload
    def on(
        self,
        event: EventKey,
        listener: Listener,
        *,
        prepend: bool = False,
        priority: int = 0,
        call_soon: bool = False,
        promisify: bool = False,
    ) -> Subscription: ...

    def on(
        self,
        event: EventKey,
        listener: Listener | None = None,
        *,
        prepend: bool = False,
        priority: int = 0,
        call_soon: bool = False,
        promisify: bool = False,
    ) -> Subscription | Callable[[F], F]:
        """Subscribe ``listener`` to an event name or pattern; without it, act as a decorator.

        Args:
            event: an event name, or a pattern with ``*`` / ``**`` segments; a string, or a
                sequence of segments (``("user", "*")``).
            listener: a sync or async callable receiving the emitted arguments.
            prepend: run before the listeners of the same priority already subscribed.
            priority: higher runs first; ties keep subscription order.
            call_soon: run the listener later on the event loop, after the emit returned
                (EventEmitter2's ``async``); ``emit_async`` awaits it.
            promisify: run the listener as a coroutine even when it returns a plain value
                (a task after ``emit``, awaited by ``emit_async``).

        Returns:
            The subscription handle (or, as a decorator, the function unchanged).
        """
        spec = self._spec(event, priority, call_soon=call_soon, promisify=promisify)
        if listener is None:

            def decorate(fn: F) -> F:
                self._add(spec, fn, prepend=prepend)
                return fn

            return decorate
        return self._add(spec, listener, prepend=prepend)

    add_listener = on

    def prepend_listener(
        self,
        event: EventKey,
        listener: Listener,
        *,
        priority: int = 0,
        call_soon: bool = False,
        promisify: bool = False,
    ) -> Subscription:
        """Subscribe ``listener`` ahead of the listeners already there."""
        spec = self._spec(event, priority, call_soon=call_soon, promisify=promisify)
        return self._add(spec, _callable(listener), prepend=True)

    @overload
    def once(
        self,
        event: EventKey,
        listener: None = None,
        *,
        timeout: float | None = None,
        handle_error: bool = False,
    ) -> Waiting: ...

    @overload
    def once(
        self,
        event: EventKey,
        listener: Listener,
        *,
        prepend: bool = False,
        priority: int = 0,
        call_soon: bool = False,
        promisify: bool = False,
    ) -> Subscription: ...

    def once(
        self,
        event: EventKey,
        listener: Listener | None = None,
        *,
        prepend: bool = False,
        priority: int = 0,
        call_soon: bool = False,
        promisify: bool = False,
        timeout: float | None = None,
        handle_error: bool = False,
    ) -> Subscription | Waiting:
        """Subscribe ``listener`` for one call; without one, wait for the event (a future).

        ``once(event)`` is :meth:`wait_for` without a predicate (EventEmitter2's static
        ``once``): ``timeout`` and ``handle_error`` apply to it.
        """
        if listener is None:
            if call_soon or promisify:
                raise TypeError("call_soon and promisify need a listener")
            return self.wait_for(event, timeout=timeout, handle_error=handle_error)
        spec = self._spec(event, priority, call_soon=call_soon, promisify=promisify)
        return self._add(spec, _callable(listener), prepend=prepend, remaining=1)

    def many(
        self,
        event: EventKey,
        n: int,
        listener: Listener,
        *,
        prepend: bool = False,
        priority: int = 0,
        call_soon: bool = False,
        promisify: bool = False,
    ) -> Subscription:
        """Subscribe ``listener`` for ``n`` calls."""
        if not isinstance(n, int) or isinstance(n, bool):
            raise TypeError(f"many() needs an integer n, not {type(n).__name__}")
        if n < 1:
            raise ValueError("many() needs n >= 1")
        spec = self._spec(event, priority, call_soon=call_soon, promisify=promisify)
        return self._add(spec, _callable(listener), prepend=prepend, remaining=n)

    def on_any(self, listener: Listener, *, prepend: bool = False) -> Subscription:
        """Subscribe ``listener(event_name, *args)`` to every event."""
        _callable(listener)
        seq = next(self._prepend_seq) if prepend else next(self._seq)
        sub = Subscription(self, _ANY_SPEC, listener, seq=seq, remaining=None, is_any=True)
        self._any.append(sub)
        self._any.sort(key=_order)
        self._invalidate()
        return sub

    def off_any(self, listener: Listener | None = None) -> None:
        """Remove one catch-all listener, or all of them."""
        if listener is not None:
            _callable(listener)
        for sub in reversed(self._any):
            if listener is None or sub.listener == listener:
                self._remove(sub)
                if listener is not None:
                    return

    def off(self, event: EventKey, listener: Listener) -> bool:
        """Remove the most recent subscription of ``listener`` to exactly ``event``."""
        _callable(listener)
        bucket = self._bucket(self._name(event), create=False)
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
            subs = list(self._bucket(self._name(event), create=False) or [])
        for sub in subs:
            self._remove(sub)

    # -- relaying another emitter ------------------------------------------------------------

    def listen_to(
        self,
        target: Any,
        events: EventKey | Iterable[EventKey] | Mapping[str, EventKey],
        *,
        reducers: Reducer | Mapping[str, Reducer] | None = None,
    ) -> None:
        """Emit here the events of another emitter (EventEmitter2's ``listenTo``).

        Args:
            target: any object with ``on(event, handler)`` and ``off(event, handler)``
                methods (or ``add_listener`` / ``remove_listener``): another emitter, pyee,
                or a plain Python object.
            events: one name (a string or a tuple of segments), a list of names (relayed
                under the same names), or a mapping of the target's names to the names they
                are emitted under here.
            reducers: one function, or one per target event name, called with a
                :class:`RelayedEvent` before it is emitted here; it may change the event's
                ``name`` and ``args``, and returning False drops it.

        Raises:
            TypeError: the target has no methods to subscribe and unsubscribe with.
        """
        subscribe, unsubscribe = _subscription_methods(target)
        if isinstance(events, Mapping):
            pairs = [(str(original), self._name(local)) for original, local in events.items()]
        elif isinstance(events, str | tuple) or not isinstance(events, Iterable):
            pairs = [(self._name(events), self._name(events))]
        else:
            pairs = [(self._name(name), self._name(name)) for name in events]
        for original, local in pairs:
            reducer = reducers.get(original) if isinstance(reducers, Mapping) else reducers
            handler = self._relay_handler(original, local, reducer)
            subscribe(original, handler)
            self._relays.append(_Relay(target, original, handler, unsubscribe))

    def stop_listening_to(
        self, target: Any | None = None, events: EventKey | Iterable[EventKey] | None = None
    ) -> bool:
        """Stop relaying: every target's events, one target's, or some of its events.

        Returns:
            True when at least one relay was stopped.
        """
        if events is None:
            names = None
        elif isinstance(events, str | tuple):
            names = {self._name(events)}
        else:
            names = {self._name(name) for name in events}
        stopped = [
            relay
            for relay in self._relays
            if (target is None or relay.target is target)
            and (names is None or relay.original in names)
        ]
        for relay in stopped:
            self._relays.remove(relay)
            relay.unsubscribe(relay.original, relay.handler)
        return bool(stopped)

    def _relay_handler(
        self, original: str, local: str, reducer: Reducer | None
    ) -> Callable[..., None]:
        def relay(*args: Any) -> None:
            if reducer is None:
                self.emit(local, *args)
                return
            relayed = RelayedEvent(name=local, original=original, args=list(args))
            if reducer(relayed) is False:
                return
            self.emit(relayed.name, *relayed.args)

        return relay

    # -- introspection -----------------------------------------------------------------------

    def listeners(self, event: EventKey) -> list[Listener]:
        """Return the listeners an emit of ``event`` would call, in order (not catch-alls).

        Given a pattern, return the listeners subscribed to that very pattern.
        """
        return [s.listener for s in self._introspect(self._name(event)) if not s.is_any]

    def listeners_any(self) -> list[Listener]:
        """Return the catch-all listeners."""
        return [s.listener for s in self._any]

    @overload
    def event_names(self, *, as_sequence: Literal[False] = False) -> list[str]: ...

    @overload
    def event_names(self, *, as_sequence: Literal[True]) -> list[tuple[str, ...]]: ...

    def event_names(self, *, as_sequence: bool = False) -> list[str] | list[tuple[str, ...]]:
        """Return the names and patterns that have listeners (as segment tuples when asked)."""
        names = [*self._exact, *self._patterns]
        if as_sequence:
            return [tuple(name.split(self.delimiter)) for name in names]
        return names

    def has_listeners(self, event: EventKey | None = None) -> bool:
        """Tell whether an emit of ``event`` would reach a listener (any event when None)."""
        if event is None:
            return bool(self._exact or self._patterns or self._any)
        return bool(self._introspect(self._name(event)))

    def listener_count(self, event: EventKey) -> int:
        """Return how many listeners an emit of ``event`` would call (not catch-alls)."""
        return sum(1 for s in self._introspect(self._name(event)) if not s.is_any)

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

        Raises:
            Exception: the emitted error of an ``error`` event nobody listens to (see
                ``ignore_errors``), or :class:`UnhandledErrorEvent`.
        """
        if not isinstance(event, str):
            event, args = self._named_emit(event, args)
        subs = self._cache.get(event)
        if subs is None:
            subs = self._resolve(event)
        if not subs:
            return self._unheard(event, args)
        return fire(self, event, args, subs)

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
            event, args = self._named_emit(event, args)
        subs = self._cache.get(event)
        if subs is None:
            subs = self._resolve(event)
        if not subs:
            self._unheard(event, args)
            return []
        return await collect(
            self, event, args, subs, raise_errors=raise_errors, sequential=sequential
        )

    def wait_for(
        self,
        event: EventKey,
        *,
        timeout: float | None = None,
        predicate: Callable[..., bool] | None = None,
        handle_error: bool = False,
    ) -> Waiting:
        """Wait for the next emit of ``event`` whose arguments satisfy ``predicate``.

        It listens from this call on: an emit right after it, before anything awaits the
        returned future, resolves it. Cancelling the future (or a task awaiting it)
        unsubscribes it.

        Args:
            event: the event name or pattern.
            timeout: seconds before it fails with ``TimeoutError`` (None: no limit).
            predicate: called with the emitted arguments; only a true answer resolves it.
            handle_error: fail with the error of an ``error`` event emitted meanwhile.

        Returns:
            A future of the single emitted argument, or of a tuple when several were
            emitted. It is also a coroutine, for ``asyncio.create_task``.
        """
        loop = asyncio.get_running_loop()
        waiting = Waiting(loop=loop)

        def resolve(*args: Any) -> None:
            if waiting.done() or (predicate is not None and not predicate(*args)):
                return
            waiting.settle(args[0] if len(args) == 1 else args)

        subs = [self._add(self._spec(event, 0), resolve, prepend=False)]
        if handle_error:

            def reject(*args: Any) -> None:
                waiting.settle(error=_error_of(args))

            subs.append(self._add(ListenerSpec(event=ERROR), reject, prepend=False))
        for sub in subs:
            waiting.on_settled(sub.off)
        if timeout is not None:
            name = subs[0].event
            timer = loop.call_later(
                timeout,
                lambda: waiting.settle(error=TimeoutError(f"no {name!r} within {timeout:g} s")),
            )
            waiting.on_settled(timer.cancel)
        return waiting

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
        self.stop_listening_to()
        self.remove_all_listeners()

    # -- internals ---------------------------------------------------------------------------

    def _name(self, event: EventKey) -> str:
        """The string name of an event given as a string, segments, or a typed event."""
        if isinstance(event, str):
            return event
        if isinstance(event, tuple | list):
            return self._join(event)
        return event_key(event)

    def _join(self, segments: tuple[Any, ...] | list[Any]) -> str:
        if not segments or not all(
            isinstance(segment, str) and segment and self.delimiter not in segment
            for segment in segments
        ):
            raise ValueError(
                f"an event name given as segments needs non-empty strings without "
                f"{self.delimiter!r}, not {segments!r}"
            )
        return self.delimiter.join(segments)

    def _named_emit(self, event: Any, args: tuple[Any, ...]) -> tuple[str, tuple[Any, ...]]:
        """The name and arguments of an emit whose event is not a plain string."""
        if isinstance(event, tuple | list):
            return self._join(event), args
        return event_key(event), (event, *args)  # a typed event is its own first argument

    def _unheard(self, event: str, args: tuple[Any, ...]) -> bool:
        """An emit nobody listens to: False, except for an ``error`` event (raised)."""
        if event == ERROR and not self.ignore_errors:
            raise _error_of(args)
        return False

    def _spec(
        self, event: EventKey, priority: int, *, call_soon: bool = False, promisify: bool = False
    ) -> ListenerSpec:
        return ListenerSpec(
            event=self._name(event), priority=priority, call_soon=call_soon, promisify=promisify
        )

    def _bucket(self, event: str, *, create: bool) -> list[Subscription] | None:
        table = (
            self._patterns if self.wildcard and is_pattern(event, self.delimiter) else self._exact
        )
        bucket = table.get(event)
        if bucket is None and create:
            bucket = table[event] = []
        return bucket

    def _add(
        self,
        spec: ListenerSpec,
        listener: Listener,
        *,
        prepend: bool,
        remaining: int | None = None,
    ) -> Subscription:
        _callable(listener)
        event = spec.event
        if not isinstance(event, str) or not event:
            raise TypeError("event must be a non-empty string")
        if self._new_listener:
            self._emit_meta(NEW_LISTENER, event, listener)
        seq = next(self._prepend_seq) if prepend else next(self._seq)
        sub = Subscription(self, spec, listener, seq=seq, remaining=remaining)
        bucket = self._bucket(event, create=True)
        assert bucket is not None
        bucket.append(sub)
        bucket.sort(key=_order)
        self._invalidate()
        limit = self.max_listeners
        if limit and len(bucket) > limit and event not in self._warned:
            self._warned.add(event)
            logger.warning(
                "possible listener leak: %d listeners on %r (max_listeners=%d)",
                len(bucket),
                event,
                limit,
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
        if self._remove_listener:
            if sub.is_any:
                self._emit_meta(REMOVE_LISTENER_ANY, sub.listener)
            else:
                self._emit_meta(REMOVE_LISTENER, sub.event, sub.listener)
        return True

    def _emit_meta(self, name: str, *args: Any) -> None:
        """Emit a meta-event to its listeners (never typed, never strict)."""
        subs = self._cache.get(name)
        if subs is None:
            subs = self._resolve(name)
        if subs:
            fire(self, name, args, subs)

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


def _callable(listener: Any) -> Listener:
    if not callable(listener):
        raise TypeError(f"listener must be callable, not {type(listener).__name__}")
    return cast(Listener, listener)


def _error_of(args: tuple[Any, ...]) -> Exception:
    """The exception an ``error`` event carries (its first argument), or one that says so."""
    error = args[0] if args else None
    return error if isinstance(error, Exception) else UnhandledErrorEvent(error)


def _subscription_methods(target: Any) -> tuple[Callable[..., Any], Callable[..., Any]]:
    for on, off in (("on", "off"), ("add_listener", "remove_listener")):
        subscribe, unsubscribe = getattr(target, on, None), getattr(target, off, None)
        if callable(subscribe) and callable(unsubscribe):
            return subscribe, unsubscribe
    raise TypeError(
        f"cannot listen to a {type(target).__name__}: it needs on/off "
        "(or add_listener/remove_listener) methods"
    )


async def _await(awaitable: Awaitable[Any]) -> Any:
    return await awaitable

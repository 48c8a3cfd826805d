"""The application's emitter: typed events, strict names, envelopes and delivery modes."""

from __future__ import annotations

import asyncio
import difflib
import inspect
import logging
from collections.abc import Callable, Iterable, Sequence
from contextvars import Token
from typing import Any, Protocol

from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.context import correlation_id_var, get_correlation_id
from app.core.db import after_commit, current_session, savepoint
from app.events.base import (
    Envelope,
    Event,
    current_envelope_var,
    event_type,
    event_types,
    new_event_id,
)
from app.events.delivery import Delivery, RetryPolicy, listener_specs
from app.events.emitter import EventEmitter
from app.events.patterns import is_pattern, matches
from app.events.subscription import (
    EventKey,
    Listener,
    Subscription,
    _current_event,
    detached_context,
    event_key,
    qualified_name,
)

logger = logging.getLogger("app.events")

EVENTS_EMITTED = Counter(
    "workflow_hub_events_emitted_total", "Typed events emitted, by name.", ["event"]
)
LISTENER_FAILURES = Counter(
    "workflow_hub_event_listener_failures_total",
    "Listener failures, by event and listener.",
    ["event", "listener"],
)


class UnknownEvent(LookupError):
    """An event name that no ``Event`` class declares (strict mode)."""


class EmitterNotReady(RuntimeError):
    """An emit before the application subscribed its listeners (strict mode)."""


class DurableDeliveryUnavailable(RuntimeError):
    """A durable listener matched, but no outbox is installed."""


class DurableSink(Protocol):
    """Writes durable deliveries to the outbox (implemented by ``app.events.outbox``)."""

    def stage(
        self,
        session: AsyncSession,
        envelope: Envelope,
        event: Event,
        subscriptions: Sequence[Subscription],
    ) -> None:
        """Add the event and its deliveries to ``session``'s transaction."""

    async def write(
        self, envelope: Envelope, event: Event, subscriptions: Sequence[Subscription]
    ) -> None:
        """Write the event and its deliveries in a transaction of its own."""


Route = tuple[tuple[Subscription, ...], tuple[Subscription, ...], tuple[Subscription, ...]]
_Tokens = tuple[Token[Envelope | None], Token[str | None] | None]


def delivery_of(sub: Subscription) -> Delivery:
    """Return how ``sub`` is delivered (``inline`` unless declared otherwise)."""
    delivery: Delivery = sub.options.get("delivery", "inline")
    return delivery


class AppEmitter(EventEmitter):
    """The app-wide emitter. Strict: every name must be declared by an ``Event`` class.

    Args:
        strict: refuse undeclared names and emits before :meth:`mark_ready`.
        max_listeners: warn once per event past this many listeners (0: no limit).
    """

    def __init__(self, *, strict: bool = True, max_listeners: int = 50) -> None:
        super().__init__(wildcard=True, delimiter=".", max_listeners=max_listeners)
        self.strict = strict
        self.ready = False
        self.durable_sink: DurableSink | None = None
        self._routes: dict[str, Route] = {}
        self._durable: dict[str, Subscription] = {}
        self._emitted: dict[str, Any] = {}

    # -- subscribing -------------------------------------------------------------------------

    def subscribe(
        self,
        event: EventKey,
        fn: Listener,
        *,
        delivery: Delivery = "inline",
        priority: int = 0,
        retry: RetryPolicy | None = None,
        listener_id: str | None = None,
        module: str | None = None,
    ) -> Subscription:
        """Subscribe ``fn`` with a delivery mode; the declarative form is ``@listener``."""
        cls = event_type(event_key(event))
        if delivery != "inline" and cls is not None and cls.sensitive:
            raise ValueError(f"{cls.name!r} is sensitive: only inline listeners may receive it")
        options: dict[str, Any] = {"delivery": delivery, "module": module}
        if delivery == "durable":
            listener_id = listener_id or qualified_name(fn)
            if listener_id in self._durable:
                raise ValueError(f"durable listener id {listener_id!r} is already subscribed")
            options.update(listener_id=listener_id, retry=retry or RetryPolicy())
        sub = self._add(event_key(event), fn, prepend=False, priority=priority, options=options)
        if delivery == "durable":
            self._durable[listener_id] = sub  # type: ignore[index]
        return sub

    def register(self, fn: Callable[..., Any], *, module: str | None = None) -> list[Subscription]:
        """Subscribe every ``@listener`` declaration of ``fn``."""
        specs = listener_specs(fn)
        if not specs:
            raise ValueError(f"{qualified_name(fn)} has no @listener declaration")
        return [
            self.subscribe(
                spec.event,
                fn,
                delivery=spec.delivery,
                priority=spec.priority,
                retry=spec.retry,
                listener_id=spec.listener_id,
                module=module,
            )
            for spec in specs
        ]

    def mark_ready(self, ready: bool = True) -> None:
        """Declare that every listener is subscribed (emits are refused before, when strict)."""
        self.ready = ready

    def durable_listener(self, listener_id: str) -> Subscription | None:
        """Return the durable subscription with this id, if any."""
        return self._durable.get(listener_id)

    def durable_listeners(self) -> dict[str, Subscription]:
        """Return every durable subscription by listener id."""
        return dict(self._durable)

    # -- emitting ----------------------------------------------------------------------------

    def emit(self, event: EventKey, *args: Any) -> bool:
        """Emit an event: inline listeners run now, background ones after commit, durable ones
        are staged in the current transaction.

        Returns:
            True when at least one listener was reached.
        """
        name, args, envelope = self._prepare(event, args)
        inline, background, durable = self._route(name)
        if not (inline or background or durable):
            return False
        tokens = self._enter(envelope)
        try:
            if durable:
                session = current_session()
                if session is None:
                    raise RuntimeError(
                        f"{name} has durable listeners: emit it inside a transaction, "
                        "or use await emit_async()"
                    )
                self._sink().stage(session, _envelope(envelope), args[0], durable)
            if background:
                self._schedule_background(name, args, background)
            ran = self._dispatch(name, args, inline) if inline else False
            return ran or bool(background or durable)
        finally:
            self._exit(tokens)

    async def emit_async(
        self,
        event: EventKey,
        *args: Any,
        raise_errors: bool = False,
        sequential: bool = False,
    ) -> list[Any]:
        """Emit an event and await its inline listeners (see ``EventEmitter.emit_async``).

        Durable deliveries are written first (in the current transaction, or in one of their
        own), background ones are scheduled for after commit, then inline listeners run.
        Inside a transaction, inline listeners share its session, so they run one by one, each
        async listener in a savepoint: a failing one rolls back its own writes only, and the
        emitting transaction stays usable.

        Returns:
            The inline listeners' results, in order.
        """
        name, args, envelope = self._prepare(event, args)
        inline, background, durable = self._route(name)
        tokens = self._enter(envelope)
        session = current_session()
        try:
            if durable:
                sink, env = self._sink(), _envelope(envelope)
                if session is not None:
                    sink.stage(session, env, args[0], durable)
                else:
                    await sink.write(env, args[0], durable)
            if background:
                self._schedule_background(name, args, background)
            if not inline:
                return []
            if session is not None:
                return await self._run_in_transaction(session, name, args, inline, raise_errors)
            return await self._run_all(name, args, inline, raise_errors, sequential)
        finally:
            self._exit(tokens)

    async def _run_in_transaction(
        self,
        session: AsyncSession,
        name: str,
        args: tuple[Any, ...],
        subs: tuple[Subscription, ...],
        raise_errors: bool,
    ) -> list[Any]:
        token = _current_event.set(name)
        results: list[Any] = []
        errors: list[Exception] = []
        try:
            for sub in subs:
                if not self._take(sub):
                    continue
                try:
                    result = sub.listener(*((name, *args) if sub.is_any else args))
                    if sub.is_async or (result is not None and inspect.isawaitable(result)):
                        async with savepoint(session):
                            result = await result
                except Exception as exc:
                    self._failed(sub, name, exc)
                    errors.append(exc)
                    result = None
                results.append(result)
        finally:
            _current_event.reset(token)
        if errors and raise_errors:
            raise ExceptionGroup(f"{len(errors)} listener(s) failed on {name!r}", errors)
        return results

    async def deliver(self, listener_id: str, event: Event, envelope: Envelope) -> Any:
        """Run one durable listener for a stored event (the relay calls this); errors propagate.

        Raises:
            LookupError: when no durable listener has this id.
        """
        sub = self._durable.get(listener_id)
        if sub is None:
            raise LookupError(f"no durable listener {listener_id!r} is subscribed")
        tokens = self._enter(envelope)
        event_token = _current_event.set(envelope.name)
        try:
            result = sub.listener(event)
            if inspect.isawaitable(result):
                result = await result
            return result
        finally:
            _current_event.reset(event_token)
            self._exit(tokens)

    # -- introspection -----------------------------------------------------------------------

    def catalog(self) -> dict[str, Any]:
        """Describe every declared event and every subscribed listener."""
        listeners = [
            {
                "module": sub.options.get("module"),
                "listener": sub.name,
                "event": sub.event,
                "delivery": delivery_of(sub),
                "priority": sub.priority,
                "listener_id": sub.options.get("listener_id"),
            }
            for sub in self.subscriptions()
            if not sub.is_any
        ]
        events = []
        for name, cls in sorted(event_types().items()):
            events.append(
                {
                    "name": name,
                    "version": cls.version,
                    "class": f"{cls.__module__}.{cls.__qualname__}",
                    "publisher": cls.__module__.rsplit(".", 1)[-1],
                    "description": (cls.__doc__ or "").strip(),
                    "schema": cls.model_json_schema(),
                    "listeners": [
                        entry for entry in listeners if matches(str(entry["event"]), name)
                    ],
                }
            )
        return {"events": events, "listeners": listeners}

    # -- internals ---------------------------------------------------------------------------

    def _invalidate(self) -> None:
        super()._invalidate()
        self._routes.clear()

    def _add(
        self,
        event: str,
        listener: Listener,
        *,
        prepend: bool,
        priority: int,
        remaining: int | None = None,
        options: dict[str, Any] | None = None,
    ) -> Subscription:
        if self.strict:
            self._check_declared(event)
        return super()._add(
            event,
            listener,
            prepend=prepend,
            priority=priority,
            remaining=remaining,
            options=options,
        )

    def _remove(self, sub: Subscription) -> bool:
        removed = super()._remove(sub)
        if removed and delivery_of(sub) == "durable":
            self._durable.pop(sub.options["listener_id"], None)
        return removed

    def _check_declared(self, event: str) -> None:
        known = event_types()
        if is_pattern(event, self.delimiter):
            if not any(matches(event, name) for name in known):
                close = self._close_patterns(event, known)
                hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
                raise UnknownEvent(f"pattern {event!r} matches no declared event{hint}")
            return
        if event not in known:
            close = difflib.get_close_matches(event, list(known), n=3, cutoff=0.6)
            hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
            raise UnknownEvent(f"no Event class declares {event!r}{hint}")

    def _close_patterns(self, pattern: str, known: Iterable[str]) -> list[str]:
        """Patterns like ``pattern`` with its literal prefix corrected (``usr.*`` -> ``user.*``)."""
        segments = pattern.split(self.delimiter)
        depth = next(i for i, segment in enumerate(segments) if "*" in segment)
        if depth == 0:
            return []
        names = list(known)
        prefixes = {self.delimiter.join(n.split(self.delimiter)[:depth]) for n in names}
        prefix = self.delimiter.join(segments[:depth])
        close = difflib.get_close_matches(prefix, sorted(prefixes), n=3, cutoff=0.6)
        fixed = (self.delimiter.join([c, *segments[depth:]]) for c in close)
        return [p for p in fixed if any(matches(p, n) for n in names)]

    def _prepare(
        self, event: EventKey, args: tuple[Any, ...]
    ) -> tuple[str, tuple[Any, ...], Envelope | None]:
        payload: Any
        if isinstance(event, Event):
            if args:
                raise TypeError("a typed event is emitted alone")
            name, args, payload = event.name, (event,), event
        elif isinstance(event, str):
            name, payload = event, args[0] if len(args) == 1 else None
            if self.strict:
                cls = event_type(name)
                if cls is None:
                    self._check_declared(name)
                elif not isinstance(payload, cls):
                    raise TypeError(f"{name!r} carries one {cls.__name__}")
        else:
            raise TypeError(f"cannot emit a {type(event).__name__}")
        if self.strict and not self.ready:
            raise EmitterNotReady(f"{name!r} emitted before the application is ready")
        if not isinstance(payload, Event):
            self._check_name(name)
            return name, args, None
        counter = self._emitted.get(name)
        if counter is None:
            self._check_name(name)
            counter = self._emitted[name] = EVENTS_EMITTED.labels(name)
        counter.inc()
        parent = current_envelope_var.get()
        event_id = new_event_id()
        correlation_id = (
            parent.correlation_id if parent else get_correlation_id() or event_id.hex
        )  # a root event outside any request starts its own trace: its id
        envelope = Envelope(
            id=event_id,
            name=name,
            organization_id=payload.organization_id,
            correlation_id=correlation_id,
            causation_id=parent.id if parent else None,
            version=type(payload).version,
        )
        return name, args, envelope

    def _route(self, name: str) -> Route:
        route = self._routes.get(name)
        if route is None:
            subs = self._matching(name)
            cls = event_type(name)
            stored = not (cls is not None and cls.sensitive)  # patterns never store secrets
            route = (
                tuple(s for s in subs if delivery_of(s) == "inline"),
                tuple(s for s in subs if stored and delivery_of(s) == "background"),
                tuple(s for s in subs if stored and delivery_of(s) == "durable"),
            )
            self._routes[name] = route
        return route

    def _enter(self, envelope: Envelope | None) -> _Tokens | None:
        if envelope is None:
            return None
        correlation = None
        if correlation_id_var.get() != envelope.correlation_id:
            correlation = correlation_id_var.set(envelope.correlation_id)
        return current_envelope_var.set(envelope), correlation

    def _exit(self, tokens: _Tokens | None) -> None:
        if tokens is None:
            return
        envelope_token, correlation_token = tokens
        if correlation_token is not None:
            correlation_id_var.reset(correlation_token)
        current_envelope_var.reset(envelope_token)

    def _sink(self) -> DurableSink:
        if self.durable_sink is None:
            raise DurableDeliveryUnavailable(
                "a durable listener matched but no outbox is installed"
            )
        return self.durable_sink

    def _schedule_background(
        self, name: str, args: tuple[Any, ...], subs: tuple[Subscription, ...]
    ) -> None:
        context = detached_context()

        def start() -> None:
            loop = asyncio.get_running_loop()
            for sub in subs:
                if self._take(sub):
                    coro = self._run_background(sub, name, args)
                    self._track(loop.create_task(coro, context=context.copy()), sub, name)

        session = current_session()
        if session is not None:
            after_commit(session, start)
        else:
            start()

    async def _run_background(self, sub: Subscription, name: str, args: tuple[Any, ...]) -> None:
        token = _current_event.set(name)
        try:
            result = sub.listener(*args)
            if inspect.isawaitable(result):
                await result
        except Exception as exc:
            self._failed(sub, name, exc)
        finally:
            _current_event.reset(token)

    def _on_failure(self, sub: Subscription, event: str, exc: Exception) -> None:
        LISTENER_FAILURES.labels(event, sub.name).inc()


def _envelope(envelope: Envelope | None) -> Envelope:
    if envelope is None:
        raise TypeError("durable delivery needs a typed event")
    return envelope

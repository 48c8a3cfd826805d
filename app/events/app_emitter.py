"""The application's emitter: typed events, strict names, envelopes and delivery modes."""

from __future__ import annotations

import asyncio
import dataclasses
import difflib
import functools
import logging
from collections.abc import Callable, Iterable, Sequence
from contextvars import Context, Token, copy_context
from typing import Any, NamedTuple, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.context import correlation_id_var, get_correlation_id
from app.core.db import after_commit, current_session, current_session_var, savepoint
from app.events import dispatch, tracing
from app.events.base import (
    Envelope,
    Event,
    current_envelope_var,
    event_type,
    event_types,
    new_event_id,
)
from app.events.delivery import listener_specs
from app.events.emitter import EventEmitter
from app.events.metrics import EVENTS_EMITTED, LISTENER_FAILURES
from app.events.patterns import is_pattern, matches
from app.events.retry import RetryPolicy
from app.events.subscription import (
    Delivery,
    EventKey,
    Listener,
    ListenerSpec,
    Subscription,
    qualified_name,
)

logger = logging.getLogger("app.events")


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


class Route(NamedTuple):
    """Where one event name goes, by delivery, each in listener order (computed once, cached)."""

    inline: tuple[Subscription, ...]
    background: tuple[Subscription, ...]
    durable: tuple[Subscription, ...]


_Tokens = tuple[Token[Envelope | None], Token[str | None] | None]


def delivery_of(sub: Subscription) -> Delivery:
    """Return how ``sub`` is delivered (``inline`` unless declared otherwise)."""
    return sub.spec.delivery


def detached_context() -> Context:
    """Copy the current context for a task that outlives the caller's transaction."""
    context = copy_context()
    context.run(current_session_var.set, None)
    return context


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
        spec = ListenerSpec(
            event=self._name(event),
            delivery=delivery,
            priority=priority,
            retry=retry,
            listener_id=listener_id,
            module=module,
        )
        return self._subscribe(spec, fn)

    def register(self, fn: Callable[..., Any], *, module: str | None = None) -> list[Subscription]:
        """Subscribe every ``@listener`` declaration of ``fn``."""
        specs = listener_specs(fn)
        if not specs:
            raise ValueError(f"{qualified_name(fn)} has no @listener declaration")
        return [self._subscribe(dataclasses.replace(spec, module=module), fn) for spec in specs]

    def _subscribe(self, spec: ListenerSpec, fn: Listener) -> Subscription:
        cls = event_type(spec.event)
        if spec.delivery != "inline" and cls is not None and cls.sensitive:
            raise ValueError(f"{cls.name!r} is sensitive: only inline listeners may receive it")
        if spec.delivery == "durable":
            listener_id = spec.listener_id or qualified_name(fn)
            if listener_id in self._durable:
                raise ValueError(f"durable listener id {listener_id!r} is already subscribed")
            spec = dataclasses.replace(
                spec, listener_id=listener_id, retry=spec.retry or RetryPolicy()
            )
            sub = self._durable[listener_id] = self._add(spec, fn, prepend=False)
            return sub
        return self._add(spec, fn, prepend=False)

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
        route = self._route(name)
        if not (route.inline or route.background or route.durable):
            return self._unheard(name, args)
        if envelope is not None and tracing.enabled():
            with tracing.emitting(envelope) as traced:
                return self._emit_routed(name, args, traced, route)
        return self._emit_routed(name, args, envelope, route)

    def _emit_routed(
        self, name: str, args: tuple[Any, ...], envelope: Envelope | None, route: Route
    ) -> bool:
        tokens = self._enter(envelope)
        try:
            session = current_session()
            if route.durable and session is None:
                raise RuntimeError(
                    f"{name} has durable listeners: emit it inside a transaction, "
                    "or use await emit_async()"
                )
            self._hand_off(route, name, args, envelope, session)
            ran = dispatch.fire(self, name, args, route.inline) if route.inline else False
            return ran or bool(route.background or route.durable)
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
        Inside a transaction, inline listeners share its session, so they always run one by
        one (``sequential`` is implied), each async listener in a savepoint: a failing one
        rolls back its own writes only, and the emitting transaction stays usable.

        Returns:
            The inline listeners' results, in order.
        """
        name, args, envelope = self._prepare(event, args)
        route = self._route(name)
        if not (route.inline or route.background or route.durable):
            self._unheard(name, args)
            return []
        if envelope is not None and tracing.enabled():
            with tracing.emitting(envelope) as traced:
                return await self._emit_async_routed(
                    name, args, traced, route, raise_errors=raise_errors, sequential=sequential
                )
        return await self._emit_async_routed(
            name, args, envelope, route, raise_errors=raise_errors, sequential=sequential
        )

    async def _emit_async_routed(
        self,
        name: str,
        args: tuple[Any, ...],
        envelope: Envelope | None,
        route: Route,
        *,
        raise_errors: bool,
        sequential: bool,
    ) -> list[Any]:
        tokens = self._enter(envelope)
        try:
            session = current_session()
            if route.durable and session is None:
                await self._sink().write(_envelope(envelope), args[0], route.durable)
            self._hand_off(route, name, args, envelope, session)
            if not route.inline:
                return []
            return await dispatch.collect(
                self,
                name,
                args,
                route.inline,
                raise_errors=raise_errors,
                sequential=sequential,
                isolation=functools.partial(savepoint, session) if session is not None else None,
            )
        finally:
            self._exit(tokens)

    def _hand_off(
        self,
        route: Route,
        name: str,
        args: tuple[Any, ...],
        envelope: Envelope | None,
        session: AsyncSession | None,
    ) -> None:
        """Stage the durable deliveries in ``session`` and schedule the background ones."""
        if route.durable and session is not None:
            self._sink().stage(session, _envelope(envelope), args[0], route.durable)
        if route.background:
            self._schedule_background(name, args, route.background, session)

    async def deliver(self, listener_id: str, event: Event, envelope: Envelope) -> Any:
        """Run one durable listener for a stored event (the relay calls this); errors propagate.

        Raises:
            LookupError: when no durable listener has this id.
        """
        sub = self._durable.get(listener_id)
        if sub is None:
            raise LookupError(f"no durable listener {listener_id!r} is subscribed")
        tokens = self._enter(envelope)
        try:
            with tracing.delivering(listener_id, envelope, delivery="durable"):
                return await dispatch.run(sub, envelope.name, (event,))
        finally:
            self._exit(tokens)

    # -- introspection -----------------------------------------------------------------------

    def catalog(self) -> dict[str, Any]:
        """Describe every declared event and every subscribed listener."""
        listeners = [
            {
                "module": sub.spec.module,
                "listener": sub.name,
                "event": sub.event,
                "delivery": delivery_of(sub),
                "priority": sub.priority,
                "listener_id": sub.spec.listener_id,
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
        spec: ListenerSpec,
        listener: Listener,
        *,
        prepend: bool,
        remaining: int | None = None,
    ) -> Subscription:
        if self.strict:
            self._check_declared(spec.event)
        return super()._add(spec, listener, prepend=prepend, remaining=remaining)

    def _remove(self, sub: Subscription) -> bool:
        removed = super()._remove(sub)
        if removed and sub.spec.listener_id is not None:
            self._durable.pop(sub.spec.listener_id, None)
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
        elif isinstance(event, str | tuple | list):
            name = event if isinstance(event, str) else self._join(event)
            payload = args[0] if len(args) == 1 else None
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
            route = Route(
                inline=tuple(s for s in subs if s.spec.delivery == "inline"),
                background=tuple(s for s in subs if stored and s.spec.delivery == "background"),
                durable=tuple(s for s in subs if stored and s.spec.delivery == "durable"),
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
        self,
        name: str,
        args: tuple[Any, ...],
        subs: tuple[Subscription, ...],
        session: AsyncSession | None,
    ) -> None:
        context = detached_context()

        def start() -> None:
            loop = asyncio.get_running_loop()
            for sub in subs:
                if self._take(sub):
                    coro = self._run_background(sub, name, args)
                    self._track(loop.create_task(coro, context=context.copy()), sub, name)

        if session is not None:
            after_commit(session, start)
        else:
            start()

    async def _run_background(self, sub: Subscription, name: str, args: tuple[Any, ...]) -> None:
        try:
            envelope = current_envelope_var.get()
            if envelope is not None and tracing.enabled():
                with tracing.delivering(sub.name, envelope, delivery="background"):
                    await dispatch.run(sub, name, args)
            else:
                await dispatch.run(sub, name, args)
        except Exception as exc:
            self._failed(sub, name, exc)

    def _task_context(self) -> Context:
        return detached_context()

    def _on_failure(self, sub: Subscription, event: str, exc: Exception) -> None:
        LISTENER_FAILURES.labels(event, sub.name).inc()


def _envelope(envelope: Envelope | None) -> Envelope:
    if envelope is None:
        raise TypeError("durable delivery needs a typed event")
    return envelope

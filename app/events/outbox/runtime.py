"""Wiring the outbox into a process: the sink on the emitter, the relay beside it.

``create_app()`` (in-process relay, ``EVENTS_RELAY_ENABLED``) and ``python -m app worker`` both
call these, so an API process and a worker behave the same.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from app.core.db import Database
from app.core.settings import EventsSettings
from app.events.app_emitter import AppEmitter
from app.events.outbox.relay import Relay, RelayConfig
from app.events.outbox.sink import OutboxSink


def install_outbox(emitter: AppEmitter, database: Database | None = None) -> OutboxSink:
    """Make ``emitter`` write its durable deliveries to the outbox.

    Args:
        emitter: the emitter whose durable listeners get deliveries.
        database: where emits outside a transaction write (the process database when omitted).

    Returns:
        The installed sink.
    """
    sink = OutboxSink(database)
    emitter.durable_sink = sink
    return sink


def make_relay(emitter: AppEmitter, database: Database, settings: EventsSettings) -> Relay:
    """Return a relay for ``emitter``'s durable listeners, woken by this process's commits too.

    Returns:
        A relay, not started: ``await relay.serve()`` runs it until ``request_stop()``.
    """
    relay = Relay(emitter, database, RelayConfig.from_settings(settings))
    if isinstance(emitter.durable_sink, OutboxSink):
        emitter.durable_sink.add_waker(relay.wake)
    return relay


async def start_relay(emitter: AppEmitter, database: Database, settings: EventsSettings) -> Relay:
    """Start a relay in the background (the API process's in-process relay).

    Returns:
        The running relay; ``await relay.stop()`` shuts it down gracefully.
    """
    relay = make_relay(emitter, database, settings)
    await relay.start()
    return relay


def import_listeners(spec: str) -> list[Callable[..., Any]]:
    """Import ``module:attribute`` listeners, comma-separated (``EVENTS_EXTRA_LISTENERS``).

    An attribute may be one ``@listener`` function or a list or tuple of them.

    Args:
        spec: for example ``"tests.events.support:listeners"``.

    Returns:
        The listener functions, in order.

    Raises:
        ValueError: an entry is not ``module:attribute``.
    """
    found: list[Callable[..., Any]] = []
    for entry in filter(None, (part.strip() for part in spec.split(","))):
        module_name, _, attribute = entry.partition(":")
        if not module_name or not attribute:
            raise ValueError(f"extra listeners are module:attribute, not {entry!r}")
        value = getattr(importlib.import_module(module_name), attribute)
        found.extend(value if isinstance(value, list | tuple) else [value])
    return found

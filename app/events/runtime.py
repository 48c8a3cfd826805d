"""The process's application emitter, installed by ``create_app()`` (one per app instance)."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from typing import Any

from app.events.app_emitter import AppEmitter
from app.events.base import Event

_emitter: AppEmitter | None = None
_publishers: dict[str, frozenset[str]] = {}


class UndeclaredPublication(TypeError):
    """A module publishes an event its ``ModuleSpec.publishes`` does not list."""


def set_emitter(emitter: AppEmitter | None) -> None:
    """Install ``emitter`` as the process's application emitter."""
    global _emitter
    _emitter = emitter


def get_emitter() -> AppEmitter:
    """Return the application emitter; raises before ``create_app()`` installed one."""
    if _emitter is None:
        raise RuntimeError("no application emitter is installed; create_app() installs it")
    return _emitter


def declare_publishers(publishers: Mapping[str, Iterable[str]]) -> None:
    """Declare which events each package may publish; :func:`publish` holds them to it.

    Args:
        publishers: event names by package (``{"app.modules.user": {"user.created", ...}}``).
            Code outside these packages (tests, benchmarks, the core) is not checked.
    """
    _publishers.clear()
    _publishers.update({package: frozenset(names) for package, names in publishers.items()})


def _check_publisher(event: Event, caller: str) -> None:
    # The caller's package is its first three segments (app.modules.<name>): one dict lookup.
    allowed = _publishers.get(".".join(caller.split(".", 3)[:3]))
    if allowed is not None and event.name not in allowed:
        raise UndeclaredPublication(
            f"{caller} published {event.name!r}, which its module's publishes does not list"
        )


async def publish(event: Event, *, raise_errors: bool = False) -> list[Any]:
    """Emit a typed event on the application emitter and await its inline listeners.

    Inside a transaction (a request, a listener's or job's ``session_scope()``), the inline
    listeners share its session, so they run one by one in priority order, each in a savepoint
    of its own. Outside one, async inline listeners run concurrently.

    Args:
        event: the event to publish.
        raise_errors: raise an ``ExceptionGroup`` of the inline listeners' failures.

    Returns:
        The inline listeners' results.

    Raises:
        UndeclaredPublication: a module published an event its ``publishes`` does not list.
    """
    if _publishers:
        _check_publisher(event, sys._getframe(1).f_globals.get("__name__", ""))
    return await get_emitter().emit_async(event, raise_errors=raise_errors)

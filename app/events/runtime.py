"""The process's application emitter, installed by ``create_app()`` (one per app instance)."""

from __future__ import annotations

from typing import Any

from app.events.app_emitter import AppEmitter
from app.events.base import Event

_emitter: AppEmitter | None = None


def set_emitter(emitter: AppEmitter | None) -> None:
    """Install ``emitter`` as the process's application emitter."""
    global _emitter
    _emitter = emitter


def get_emitter() -> AppEmitter:
    """Return the application emitter; raises before ``create_app()`` installed one."""
    if _emitter is None:
        raise RuntimeError("no application emitter is installed; create_app() installs it")
    return _emitter


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
    """
    return await get_emitter().emit_async(event, raise_errors=raise_errors)

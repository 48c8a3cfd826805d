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


async def publish(
    event: Event, *, raise_errors: bool = False, sequential: bool = False
) -> list[Any]:
    """Emit a typed event on the application emitter and await its inline listeners.

    Args:
        event: the event to publish.
        raise_errors: raise an ``ExceptionGroup`` of the inline listeners' failures.
        sequential: await the inline listeners one by one, in priority order.

    Returns:
        The inline listeners' results.
    """
    return await get_emitter().emit_async(event, raise_errors=raise_errors, sequential=sequential)

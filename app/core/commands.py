"""The runtime of one-shot commands: the process database and the application emitter.

A module's command (``python -m app user create``) publishes events whose listeners live in other
modules, which only the composition root knows. ``app/cli.py`` installs the runtime here before
it runs a command, and module commands run their work with :func:`run_command`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import TypeVar

T = TypeVar("T")

CommandRuntime = Callable[[], AbstractAsyncContextManager[None]]

_runtime: CommandRuntime | None = None


def install_command_runtime(runtime: CommandRuntime | None) -> None:
    """Install the context that sets up (and tears down) what a command needs."""
    global _runtime
    _runtime = runtime


def run_command(work: Callable[[], Awaitable[T]]) -> T:
    """Run ``work`` in a fresh event loop, inside the installed command runtime.

    Args:
        work: a coroutine function; it may open ``session_scope()`` and publish events.

    Returns:
        What ``work`` returned.

    Raises:
        RuntimeError: when no runtime is installed (``app/cli.py`` installs it).
    """
    runtime = _runtime
    if runtime is None:
        raise RuntimeError("no command runtime is installed; run commands through python -m app")

    async def main() -> T:
        async with runtime():
            return await work()

    return asyncio.run(main())

"""The runtime of one-shot commands, and the one way a command fails.

A module's command (``python -m app user create``) publishes events whose listeners live in other
modules, which only the composition root knows. ``app/cli.py`` installs the runtime here before
it runs a command, and commands run their work with :func:`run_command`.

Every command reports a failure the same way, on stderr, and exits 1: ``error (<code>): <detail>``
(:func:`fail`). :func:`run_command` does it for an ``AppError`` its work raises.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import NoReturn, TypeVar

import typer

from app.core.errors import AppError

T = TypeVar("T")

CommandRuntime = Callable[[], AbstractAsyncContextManager[object]]

_runtime: CommandRuntime | None = None


def install_command_runtime(runtime: CommandRuntime | None) -> None:
    """Install the context that sets up (and tears down) what a command needs."""
    global _runtime
    _runtime = runtime


def fail(code: str, detail: str) -> NoReturn:
    """Print ``error (<code>): <detail>`` on stderr and exit 1: the one way a command fails.

    Args:
        code: a stable machine code (an ``AppError``'s, or the command's own).
        detail: one human sentence; never a secret.

    Raises:
        typer.Exit: always, with code 1.
    """
    typer.echo(f"error ({code}): {detail}", err=True)
    raise typer.Exit(1)


def run_command(work: Callable[[], Awaitable[T]]) -> T:
    """Run ``work`` in a fresh event loop, inside the installed command runtime.

    An ``AppError`` that ``work`` raises fails the command (see :func:`fail`).

    Args:
        work: a coroutine function; it may open ``session_scope()`` and publish events.

    Returns:
        What ``work`` returned.

    Raises:
        RuntimeError: when no runtime is installed (``app/cli.py`` installs it).
        typer.Exit: ``work`` raised an ``AppError``.
    """
    runtime = _runtime
    if runtime is None:
        raise RuntimeError("no command runtime is installed; run commands through python -m app")

    async def main() -> T:
        async with runtime():
            return await work()

    try:
        return asyncio.run(main())
    except AppError as exc:
        fail(exc.code, exc.detail)

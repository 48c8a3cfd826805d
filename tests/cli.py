"""``python -m app ...`` as a real subprocess, as an operator runs it: one helper for the suite.

The child gets this process's environment minus every setting a test must choose itself
(``DATABASE_*``, ``APP_*``, ``EVENTS_*``, ``SANDBOX_*``, ``SCHEDULER_*``), then ``APP_ENV=dev`` and
``APP_LOG_LEVEL=WARNING``, then what the test passes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

OWN_PREFIXES = ("DATABASE_", "APP_", "EVENTS_", "SANDBOX_", "SCHEDULER_")
"""Settings a test chooses itself: never inherited from the shell that runs the suite."""


def app_env(**values: str) -> dict[str, str]:
    """Return the environment of a ``python -m app`` child: inherited, cleaned, then ``values``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(OWN_PREFIXES)}
    env.update(APP_ENV="dev", APP_LOG_LEVEL="WARNING")
    env.update(values)
    return env


def sqlite_env(tmp_path: Path, **values: str) -> dict[str, str]:
    """Return :func:`app_env` with a SQLite database of its own in ``tmp_path`` (``cli.db``)."""
    return app_env(DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}", **values)


def run_app(
    args: Sequence[str], env: Mapping[str, str], root: Path, *, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m app *args`` in ``root`` to its end; its output is captured as text.

    The timeout is generous: a shell command on a loaded two-core machine can take minutes.
    """
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        env=dict(env),
        cwd=root,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start_app(args: Sequence[str], env: Mapping[str, str], root: Path) -> subprocess.Popen[str]:
    """Start ``python -m app *args`` in ``root``; stdout and stderr come together on ``stdout``."""
    return subprocess.Popen(
        [sys.executable, "-m", "app", *args],
        env=dict(env),
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )

"""Listeners the browser test's server loads (``EVENTS_EXTRA_LISTENERS``), and the server itself.

A durable listener refuses each login the first time it sees it, so logging in to the console
leaves one real dead letter for the test to retry.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from app.contracts.auth import UserLoggedIn
from app.events import DoNotRetry, listener

LISTENER = "tests.browser.login_refused_once"
_refused: set[str] = set()


@listener(UserLoggedIn, delivery="durable", listener_id=LISTENER)
async def refuse_each_login_once(event: UserLoggedIn) -> None:
    """Fail the first delivery of each login (a dead letter at once), accept a retry."""
    key = str(event.session_id)
    if key not in _refused:
        _refused.add(key)
        raise DoNotRetry(f"login {key} refused once <b>on purpose</b>")


listeners = [refuse_each_login_once]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def demo_server(root: Path, workdir: Path) -> Iterator[str]:
    """Run ``python -m app serve`` like ``make run`` (demo seed, sandbox) on a free port."""
    port = free_port()
    env = {
        **os.environ,
        "APP_ENV": "dev",
        "APP_SEED_DEMO": "true",
        "SANDBOX_ENABLED": "true",
        "DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'browser.db'}",
        "EVENTS_EXTRA_LISTENERS": f"{__name__}:listeners",
        "APP_LOG_LEVEL": "WARNING",
    }
    env.pop("TEST_DATABASE_URL", None)
    log = (workdir / "server.log").open("w")
    command = [sys.executable, "-m", "app", "serve", "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited: {(workdir / 'server.log').read_text()}")
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not become ready in 60 s")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()

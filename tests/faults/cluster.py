"""Real processes on one PostgreSQL: the sandbox standalone, API processes, workers, schedulers.

Each process is ``python -m app ...`` with its output (stdout and stderr) written to a log file
of its own, so a test can kill one with SIGKILL, start it again, and grep every log at the end
for what must never appear there (a traceback, an unhandled error).
"""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx
from sqlalchemy import text

from app.core.db import Database
from tests.cli import app_env

FORBIDDEN = ("Traceback", "Unhandled")
"""What no process's log may contain after a run, however hard the faults."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    handle: IO[bytes]
    url: str | None = None


@dataclass
class Cluster:
    """The processes of one test; :meth:`close` stops whatever is still running."""

    root: Path
    logs: Path
    env: dict[str, str]
    """What every process gets (on top of :func:`tests.cli.app_env`)."""
    processes: dict[str, Process] = field(default_factory=dict)
    _incarnations: dict[str, int] = field(default_factory=dict)

    def start(self, name: str, args: list[str], **env: str) -> Process:
        """Start ``python -m app *args`` as ``name`` (a restart gets a new log file)."""
        incarnation = self._incarnations.get(name, 0) + 1
        self._incarnations[name] = incarnation
        log = self.logs / f"{name}.{incarnation}.log"
        handle = log.open("wb")
        popen = subprocess.Popen(
            [sys.executable, "-m", "app", *args],
            env=app_env(**{**self.env, **env}),
            cwd=self.root,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
        process = Process(name, popen, log, handle)
        self.processes[name] = process
        return process

    def start_sandbox(self, name: str = "sandbox", **env: str) -> Process:
        """The simulators alone on a free port (:meth:`up` waits until they answer)."""
        port = free_port()
        process = self.start(name, ["sandbox", "--port", str(port)], **env)
        process.url = f"http://127.0.0.1:{port}/sandbox"
        return process

    def start_api(self, name: str, **env: str) -> Process:
        """``serve`` on a free port, without relay or scheduler unless ``env`` says so
        (:meth:`up` waits until it is ready)."""
        port = free_port()
        values = {"EVENTS_RELAY_ENABLED": "false", "SCHEDULER_ENABLED": "false", **env}
        process = self.start(name, ["serve", "--no-migrate", "--port", str(port)], **values)
        process.url = f"http://127.0.0.1:{port}"
        return process

    async def up(self, *names: str, timeout: float = 120) -> None:
        """Wait until the named sandbox and API processes answer (they start in parallel)."""
        for name in names:
            process = self.processes[name]
            assert process.url is not None
            probe = f"{process.url}/" if name.startswith("sandbox") else f"{process.url}/readyz"
            await self._wait_until_up(process, probe, timeout)

    def start_worker(self, name: str, **env: str) -> Process:
        return self.start(name, ["worker"], **env)

    def start_scheduler(self, name: str, **env: str) -> Process:
        return self.start(name, ["scheduler"], **env)

    def kill(self, name: str) -> None:
        """SIGKILL: no shutdown, no release of leases, no commit of what was in flight."""
        process = self.processes[name]
        process.popen.send_signal(signal.SIGKILL)
        process.popen.wait(10)
        process.handle.close()

    def stop(self, name: str, timeout: float = 30) -> int:
        """SIGTERM and wait; return the exit code (SIGKILL after ``timeout``)."""
        process = self.processes[name]
        if process.popen.poll() is None:
            process.popen.send_signal(signal.SIGTERM)
            try:
                process.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                process.popen.kill()
                process.popen.wait(10)
        process.handle.close()
        return process.popen.returncode

    def close(self) -> None:
        for name in list(self.processes):
            self.stop(name, timeout=15)

    def alive(self, name: str) -> bool:
        return self.processes[name].popen.poll() is None

    def log_text(self, prefix: str = "") -> str:
        """Every log so far of the processes whose name starts with ``prefix``."""
        return "\n".join(
            f"== {path.name} ==\n{path.read_text(errors='replace')}"
            for path in sorted(self.logs.glob(f"{prefix}*.log"))
        )

    def problems(self) -> list[str]:
        """The lines of any log that name a traceback or an unhandled error."""
        return [
            f"{path.name}: {line}"
            for path in sorted(self.logs.glob("*.log"))
            for line in path.read_text(errors="replace").splitlines()
            if any(word in line for word in FORBIDDEN)
        ]

    async def _wait_until_up(self, process: Process, url: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=5) as http:
            while time.monotonic() < deadline:
                if process.popen.poll() is not None:
                    process.handle.flush()
                    raise RuntimeError(f"{process.name} exited:\n{process.log.read_text()}")
                try:
                    if (await http.get(url)).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.2)
        raise TimeoutError(f"{process.name} never answered {url}:\n{process.log.read_text()}")


def process_env(database_url: str, sandbox_key: Path, **values: str) -> Mapping[str, str]:
    """What every process of a fault test shares: the database, a fast relay, small pools."""
    return {
        "DATABASE_URL": database_url,
        "APP_ENV": "test",
        "APP_LOG_LEVEL": "WARNING",
        "SANDBOX_JWT_KEY_FILE": str(sandbox_key),
        # A shared PostgreSQL (100 connections) serves every process of the test and others.
        "DATABASE_POOL_SIZE": "4",
        "DATABASE_MAX_OVERFLOW": "6",
        "EVENTS_RELAY_CONCURRENCY": "8",
        "EVENTS_RELAY_LEASE_SECONDS": "3",
        "EVENTS_RELAY_HEARTBEAT_SECONDS": "1",
        "EVENTS_RELAY_POLL_MIN_SECONDS": "0.05",
        "EVENTS_RELAY_POLL_MAX_SECONDS": "0.5",
        "SCHEDULER_RECONCILE_SECONDS": "0.5",
        **values,
    }


async def eventually(
    check: Callable[[], Awaitable[bool]], timeout: float, what: str, *, every: float = 0.25
) -> None:
    """Poll ``check`` every ``every`` seconds (gently: the machine is busy with the processes
    under test) until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"timed out after {timeout:.0f} s waiting for {what}"
        await asyncio.sleep(every)


async def relays_listening(database: Database, count: int, timeout: float = 120) -> None:
    """Wait until ``count`` relays LISTEN for new deliveries (their processes are ready)."""

    async def listening() -> bool:
        async with database.engine.connect() as conn:
            found = await conn.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND query ILIKE 'LISTEN%'"
                )
            )
        return int(found or 0) >= count

    await eventually(listening, timeout, f"{count} relays to listen")

"""``python -m app``: migrate, seed-demo and serve, as real subprocesses."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.cli import run_app, sqlite_env, start_app


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return sqlite_env(tmp_path, **extra)


def _run(args: list[str], env: dict[str, str], root: Path) -> subprocess.CompletedProcess[str]:
    return run_app(args, env, root)


def test_migrate_then_seed_demo_is_idempotent(tmp_path: Path, project_root: Path) -> None:
    env = _env(tmp_path)
    migrated = _run(["migrate"], env, project_root)
    assert migrated.returncode == 0, migrated.stderr
    for _ in range(2):
        seeded = _run(["seed-demo"], env, project_root)
        assert seeded.returncode == 0, seeded.stderr
    import sqlite3

    with sqlite3.connect(tmp_path / "cli.db") as conn:
        names = [row[0] for row in conn.execute("SELECT name FROM organizations")]
    assert names == ["Demo"]


def test_prod_with_defaults_refuses_to_start(tmp_path: Path, project_root: Path) -> None:
    result = _run(["migrate"], _env(tmp_path, APP_ENV="prod"), project_root)
    assert result.returncode == 1
    assert result.stderr.startswith("error (insecure_settings): ")
    assert "AUTH_JWT_SECRET" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_invalid_setting_is_named_without_its_value(tmp_path: Path, project_root: Path) -> None:
    result = _run(["migrate"], _env(tmp_path, DATABASE_POOL_SIZE="lots-of-secret"), project_root)
    assert result.returncode == 1
    assert result.stderr.startswith("error (invalid_settings): invalid settings (DatabaseSettings)")
    assert "pool_size:" in result.stderr
    assert "lots-of-secret" not in result.stderr
    assert "Traceback" not in result.stderr


def test_seed_demo_refuses_prod(tmp_path: Path, project_root: Path) -> None:
    env = _env(
        tmp_path,
        APP_ENV="prod",
        AUTH_JWT_SECRET="a-prod-secret-that-is-long-enough-0123456789",
        AUTH_ENCRYPTION_KEY="a-prod-encryption-key-long-enough-0123456789",
    )
    assert _run(["migrate"], env, project_root).returncode == 0
    refused = _run(["seed-demo"], env, project_root)
    assert refused.returncode == 1
    assert refused.stderr.startswith("error (refused_in_prod): ")
    assert "never seeded with APP_ENV=prod" in refused.stderr
    import sqlite3

    with sqlite3.connect(tmp_path / "cli.db") as conn:
        assert conn.execute("SELECT count(*) FROM organizations").fetchone() == (0,)


def test_unknown_command_fails_with_usage(tmp_path: Path, project_root: Path) -> None:
    result = _run(["no-such-command"], _env(tmp_path), project_root)
    assert result.returncode == 2
    assert "No such command" in result.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.slow
def test_serve_answers_health_and_stops_on_sigint(tmp_path: Path, project_root: Path) -> None:
    port = _free_port()
    env = _env(tmp_path, PORT=str(port), APP_SEED_DEMO="true")
    process = start_app(["serve"], env, project_root)
    try:
        deadline = time.monotonic() + 60
        ready = None
        while time.monotonic() < deadline:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert ready is not None, "the server never answered"
        assert ready.status_code == 200
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
    finally:
        process.send_signal(2)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output


def test_the_worker_and_the_scheduler_run_on_uvloop() -> None:
    """As uvicorn runs the API: asyncio's own loop fragments the heap (see run_service)."""
    import asyncio

    from app.cli import run_service

    loops: list[str] = []

    async def main() -> None:
        loops.append(type(asyncio.get_running_loop()).__module__)

    run_service(main())
    assert loops == ["uvloop"]

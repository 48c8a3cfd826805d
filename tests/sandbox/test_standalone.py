"""``python -m app sandbox --port N``: the same paths as the mount, never in prod."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.cli import app_env, run_app, start_app
from tests.sandbox.test_mount import _free_port


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return app_env(SANDBOX_JWT_KEY_FILE=str(tmp_path / "k.pem"), **extra)


def test_the_standalone_sandbox_serves_the_mounted_paths(
    tmp_path: Path, project_root: Path
) -> None:
    port = _free_port()
    process = start_app(
        ["sandbox", "--port", str(port)], _env(tmp_path, SANDBOX_USERS="10"), project_root
    )
    try:
        base = f"http://127.0.0.1:{port}/sandbox"
        deadline = time.monotonic() + 30
        while True:
            try:
                index = httpx.get(f"{base}/", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stdout.read() if process.stdout else ""
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert index.json()["users"] == 10
        tasks = httpx.get(
            f"{base}/oracle/bpm/api/4.0/tasks", auth=("emma.employee", "sandbox-password")
        )
        assert tasks.status_code == 200
        assert tasks.json()["count"] == 4
        assert (tmp_path / "k.pem").stat().st_mode & 0o777 == 0o600
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_standalone_sandbox_refuses_prod(tmp_path: Path, project_root: Path) -> None:
    result = run_app(
        ["sandbox", "--port", "1"],
        _env(tmp_path, APP_ENV="prod", AUTH_JWT_SECRET="x" * 40, AUTH_ENCRYPTION_KEY="k" * 40),
        project_root,
        timeout=60,
    )
    assert result.returncode == 1
    assert "never runs with APP_ENV=prod" in result.stderr

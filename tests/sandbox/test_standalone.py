"""``python -m app sandbox --port N``: the same paths as the mount, never in prod."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.sandbox.test_mount import _free_port


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "APP_", "SANDBOX_"))
    }
    env.update(APP_ENV="dev", APP_LOG_LEVEL="WARNING", SANDBOX_JWT_KEY_FILE=str(tmp_path / "k.pem"))
    env.update(extra)
    return env


def test_the_standalone_sandbox_serves_the_mounted_paths(
    tmp_path: Path, project_root: Path
) -> None:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "sandbox", "--port", str(port)],
        env=_env(tmp_path, SANDBOX_USERS="10"),
        cwd=project_root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        base = f"http://127.0.0.1:{port}/sandbox"
        deadline = time.monotonic() + 30
        while True:
            try:
                index = httpx.get(f"{base}/", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
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
    result = subprocess.run(
        [sys.executable, "-m", "app", "sandbox", "--port", "1"],
        env=_env(tmp_path, APP_ENV="prod", AUTH_JWT_SECRET="x" * 40, AUTH_ENCRYPTION_KEY="k" * 40),
        cwd=project_root,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "never runs with APP_ENV=prod" in result.stderr

"""``python -m app scheduler`` and ``python -m app jobs ...``, as real subprocesses."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.cli import run_app, sqlite_env, start_app


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return sqlite_env(tmp_path, **extra)


_run = run_app
_start = start_app


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("SCHEDULER_TASK_SWEEP_CRON", "61 * * * *"),
        ("SCHEDULER_PROFILE_SYNC_CRON", "every friday"),
        ("SCHEDULER_TIMEZONE", "Mars/Olympus_Mons"),
    ],
)
def test_a_bad_cron_or_time_zone_refuses_to_start(
    tmp_path: Path, project_root: Path, setting: str, value: str
) -> None:
    commands = [["scheduler"]]
    if setting == "SCHEDULER_TASK_SWEEP_CRON":  # the API refuses it the same way
        commands.append(["serve", "--no-migrate"])
    for command in commands:
        result = _run(command, _env(tmp_path, **{setting: value}), project_root)
        assert result.returncode == 1, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert setting in lines[0]
        assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_jobs_run_from_the_shell_until_the_run_finishes(tmp_path: Path, project_root: Path) -> None:
    # The sweep's users sync their inboxes at the sources: the demo's sandbox must answer.
    port = _free_port()
    env = _env(tmp_path, SANDBOX_PUBLIC_URL=f"http://127.0.0.1:{port}/sandbox")
    assert _run(["migrate"], env, project_root).returncode == 0
    assert _run(["seed-demo"], env, project_root).returncode == 0
    sandbox = _start(["sandbox", "--port", str(port)], env, project_root)
    try:
        _wait_for(f"http://127.0.0.1:{port}/sandbox/", sandbox)
        _jobs_run(env, project_root)
    finally:
        sandbox.send_signal(signal.SIGTERM)
        sandbox.communicate(timeout=30)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_for(url: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[0]
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} never answered")


def _jobs_run(env: dict[str, str], project_root: Path) -> None:

    listed = _run(["jobs", "list"], env, project_root)
    assert listed.returncode == 0, listed.stderr
    assert [line.split()[0] for line in listed.stdout.splitlines()] == [
        "task_sweep",
        "profile_sync",
        "notification.prune",
        "procurement.idempotency.prune",
        "hr.idempotency.prune",
        "leasing.idempotency.prune",
    ]
    unknown = _run(["jobs", "run", "nope", "--organization", "Demo"], env, project_root)
    assert unknown.returncode == 2
    assert (
        "no job 'nope'; the jobs are: task_sweep, profile_sync, notification.prune, "
        "procurement.idempotency.prune" in unknown.stderr
    )
    nobody = _run(["jobs", "run", "task_sweep", "--organization", "Nope"], env, project_root)
    assert nobody.returncode == 2
    assert "no organisation 'Nope'" in nobody.stderr

    # A relay fans the run out; `jobs run` watches its users and finishes the run.
    worker = _start(["worker"], env, project_root)
    try:
        result = _run(["jobs", "run", "task_sweep", "--organization", "Demo"], env, project_root)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "succeeded, 6 users, 0 failures" in result.stdout
        started = _run(
            ["jobs", "run", "profile_sync", "--organization", "Demo", "--no-wait"],
            env,
            project_root,
        )
        assert started.returncode == 0, started.stderr
        assert started.stdout.startswith("run ")
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.communicate(timeout=30)


@pytest.mark.slow
def test_the_scheduler_process_stops_on_sigterm(tmp_path: Path, project_root: Path) -> None:
    env = _env(tmp_path, APP_LOG_LEVEL="INFO")
    assert _run(["migrate"], env, project_root).returncode == 0
    process = _start(["scheduler"], env, project_root)
    seen: list[str] = []
    deadline = time.monotonic() + 90
    assert process.stdout is not None
    for line in process.stdout:  # wait until it is up: the jobs are registered
        seen.append(line)
        if "job profile_sync: next run at" in line or time.monotonic() > deadline:
            break
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=30)
    output = "".join(seen) + output
    assert process.returncode == 0, output
    assert "job task_sweep: next run at" in output
    assert "scheduler stopped" in output

"""Provisioning: the demo seed and the ``org create`` / ``user create`` commands."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from app.core.db import session_scope
from app.modules.user.models import User
from app.modules.user.provisioning import DEMO_PASSWORD, DEMO_USERS
from app.runtime import seed_demo_data
from tests.cli import run_app, sqlite_env
from tests.factories import login


async def test_the_demo_seed_is_idempotent_and_its_accounts_log_in(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await seed_demo_data()
    await seed_demo_data()
    async with session_scope() as session:
        count = await session.scalar(select(func.count()).select_from(User))
        people = {u.email: u for u in (await session.scalars(select(User))).all()}
    assert count == len(DEMO_USERS) >= 4
    assert (people["admin@example.com"].role, people["admin@example.com"].user_type) == (
        "admin",
        "EMPLOYEE",
    )
    assert (people["employee@example.com"].role, people["employee@example.com"].user_type) == (
        "employee",
        "EMPLOYEE",
    )
    assert all(u.person_number for u in people.values() if u.user_type == "EMPLOYEE")
    for email in ("admin@example.com", "employee@example.com"):
        assert (await login(client, email, DEMO_PASSWORD)).status_code == 200


def test_org_and_user_create_commands(tmp_path: Path, project_root: Path) -> None:
    env = sqlite_env(tmp_path)
    assert run_app(["migrate"], env, project_root).returncode == 0
    created = run_app(
        [
            "org", "create", "--name", "Acme",
            "--admin-email", "Boss@Acme.com", "--admin-password", "s3cret-pass",
        ],
        env,
        project_root,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert "Acme" in created.stdout
    again = run_app(
        [
            "org",
            "create",
            "--name",
            "Acme",
            "--admin-email",
            "x@acme.com",
            "--admin-password",
            "s3cret-pass",
        ],
        env,
        project_root,
    )
    assert again.returncode == 1
    assert again.stderr.startswith("error (organization_exists): "), again.stderr
    user = run_app(
        [
            "user", "create", "--org", "Acme", "--email", "worker@acme.com",
            "--password", "worker-pass", "--user-type", "CONTRACTOR", "--first-name", "Wes",
        ],
        env,
        project_root,
    )  # fmt: skip
    assert user.returncode == 0, user.stderr
    missing = run_app(
        ["user", "create", "--org", "Nope", "--email", "a@acme.com", "--password", "long-enough"],
        env,
        project_root,
    )
    assert missing.returncode == 1
    assert "organization_not_found" in missing.stderr
    bad = run_app(
        ["user", "create", "--org", "Acme", "--email", "nope", "--password", "long-enough"],
        env,
        project_root,
    )
    assert bad.returncode == 2
    with sqlite3.connect(tmp_path / "cli.db") as conn:
        users = conn.execute("SELECT email, role, user_type FROM users ORDER BY email").fetchall()
        hashes = [row[0] for row in conn.execute("SELECT password_hash FROM auth_accounts")]
    assert users == [
        ("boss@acme.com", "admin", "EMPLOYEE"),
        ("worker@acme.com", "employee", "CONTRACTOR"),
    ]
    assert len(hashes) == 2
    assert all(h.startswith("$argon2id$v=19$m=65536,t=3,p=4$") for h in hashes)


def test_demo_employees_are_workers_of_the_oracle_sandbox() -> None:
    sandbox = pytest.importorskip("app.sandbox.data")
    data = sandbox.DataSet(seed=42, users=50)
    employees = [d for d in DEMO_USERS if d.user_type == "EMPLOYEE"]
    assert len(employees) >= 4
    for demo in employees:
        index = data.index_of_number(demo.person_number)
        assert index is not None, demo
        assert data.index_of_username(demo.oracle_username) == index
        person = data.person(index)
        assert (person.first_name, person.last_name) == (demo.first_name, demo.last_name)

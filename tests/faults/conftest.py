"""Fixtures of the fault tests: an organisation of sandbox people, each with a phone, and the
processes around them (see ``cluster.py``).

Sizes come from the environment, so that ``make soak`` runs the same tests at full size:
``FAULTS_KILL_USERS``, ``FAULTS_ORACLE_USERS``, ``FAULTS_TICKS``.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import insert

from app.core.db import session_scope
from app.core.settings import Settings, get_settings, reset_settings
from app.modules.notification.models import Device
from app.modules.user.models import User
from app.sandbox.data import DataSet
from app.sandbox.keys import demo_private_key_pem
from tests import factories
from tests.factories import PASSWORD, Account, connect_to_sandbox, create_org, create_user
from tests.faults.cluster import Cluster, process_env

SEED = 42


def size(name: str, default: int) -> int:
    """A test's size: ``name`` from the environment (``make soak``), else the small default."""
    return int(os.environ.get(name, str(default)))


@pytest.fixture
def settings(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """This process only writes the test's data: every delivery waits for the worker processes."""
    monkeypatch.setenv("EVENTS_RELAY_ENABLED", "false")
    reset_settings()
    yield get_settings()
    reset_settings()


@pytest.fixture
def sandbox_key(tmp_path: Path) -> Path:
    """The demo RSA key of this test's sandbox (Oracle bearer JWTs), created here."""
    path = tmp_path / "sandbox_oracle_jwt.pem"
    demo_private_key_pem(path)
    return path


@pytest.fixture
def cluster(
    database_url: str, sandbox_key: Path, project_root: Path, tmp_path: Path
) -> Iterator[Cluster]:
    logs = tmp_path / "logs"
    logs.mkdir()
    running = Cluster(project_root, logs, dict(process_env(database_url, sandbox_key)))
    try:
        yield running
    finally:
        running.close()


@dataclass(frozen=True)
class Population:
    organization_id: uuid.UUID
    admin: Account
    """Person 0 of the sandbox, an admin (swept like everyone)."""
    approvers: list[Account]
    """Persons 1.. of the sandbox with a password: they log in and approve during a run."""
    users: int
    """Everyone swept: persons 0 to users - 1, each with one Android device."""


def device_token(index: int, organization: str = "faults") -> str:
    return f"{organization.lower()}-device-{index:06d}-{'x' * 24}"


async def populate(
    sandbox_url: str, sandbox_key: Path, *, users: int, approvers: int = 0, name: str = "Faults"
) -> Population:
    """An organisation connected to the sandbox, of ``users`` sandbox people with a device each.

    The admin and the approvers are created through the user service (they log in); the others
    are written in bulk, as a directory import would.
    """
    organization_id = await create_org(name)
    await connect_to_sandbox(
        organization_id, sandbox_url, jwt_private_key=demo_private_key_pem(sandbox_key)
    )
    data = DataSet(seed=SEED, users=max(users, 1))
    accounts: list[Account] = []
    for index in range(min(users, approvers + 1)):
        person = data.person(index)
        accounts.append(
            await create_user(
                organization_id,
                email=person.email,
                password=PASSWORD,
                role="admin" if index == 0 else "employee",
                first_name=person.first_name,
                last_name=person.last_name,
                oracle_username=person.username,
                person_number=person.person_number,
            )
        )
    rows = []
    for index in range(len(accounts), users):
        person = data.person(index)
        rows.append(
            {
                "id": uuid.uuid4(),
                "organization_id": organization_id,
                "email": person.email,
                "role": "employee",
                "user_type": "EMPLOYEE",
                "first_name": person.first_name,
                "last_name": person.last_name,
                "oracle_username": person.username,
                "person_number": person.person_number,
            }
        )
    user_ids = [a.user_id for a in accounts] + [row["id"] for row in rows]
    devices = [
        {
            "id": uuid.uuid4(),
            "organization_id": organization_id,
            "user_id": user_id,
            "token": device_token(index, name),
            "token_digest": hashlib.sha256(device_token(index, name).encode()).hexdigest(),
            "platform": "android",
        }
        for index, user_id in enumerate(user_ids)
    ]
    async with session_scope() as session:
        for start in range(0, len(rows), 1000):
            await session.execute(insert(User), rows[start : start + 1000])
        for start in range(0, len(devices), 1000):
            await session.execute(insert(Device), devices[start : start + 1000])
    return Population(organization_id, accounts[0], accounts[1:], users)


async def log_in(api: str, account: Account) -> Account:
    async with httpx.AsyncClient(base_url=api, timeout=30) as http:
        return await factories.log_in(http, account, organization_id=str(account.organization_id))


@pytest.fixture
async def ready(app: FastAPI) -> FastAPI:
    """The test process's app (relay off): its emitter writes the test's data and events."""
    return app

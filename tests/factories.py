"""Typed factories for organisations, users and logged-in clients (they need a running app).

Users are created through the user module's service, so the auth module's read model is fed
by the real events, exactly as in production.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.core.db import session_scope
from app.core.settings import get_settings
from app.core.tenancy import Organization

PASSWORD = "correct-horse-battery"
_sequence = itertools.count(1)


@dataclass(frozen=True)
class Account:
    """A user, the password they log in with, and (once logged in) their tokens."""

    user_id: uuid.UUID
    organization_id: uuid.UUID
    email: str
    password: str = PASSWORD
    access_token: str = ""
    refresh_token: str = ""

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


async def create_org(name: str | None = None) -> uuid.UUID:
    """Add an organisation and return its id."""
    async with session_scope() as session:
        organization = Organization(name=name or f"Org {next(_sequence)}")
        session.add(organization)
        await session.flush()
        return organization.id


async def create_user(
    organization_id: uuid.UUID,
    *,
    email: str | None = None,
    password: str | None = PASSWORD,
    role: str = "employee",
    user_type: str = "EMPLOYEE",
    **fields: Any,
) -> Account:
    """Add a user through the user service (events included) and return it."""
    from app.modules.user import service

    email = email or f"user{next(_sequence)}@example.com"
    async with session_scope() as session:
        user = await service.create_user(
            session,
            settings=get_settings(),
            organization_id=organization_id,
            email=email,
            password=password,
            role=role,
            user_type=user_type,
            **fields,
        )
        return Account(user.id, organization_id, user.email, password or "")


async def login(
    client: httpx.AsyncClient, email: str, password: str, **body: Any
) -> httpx.Response:
    """POST /auth/login."""
    return await client.post(
        "/api/v1/auth/login", json={"email": email, "password": password, **body}
    )


async def log_in(client: httpx.AsyncClient, account: Account, **body: Any) -> Account:
    """Log ``account`` in and return it with its tokens."""
    response = await login(client, account.email, account.password, **body)
    assert response.status_code == 200, response.text
    tokens = response.json()
    return Account(
        account.user_id,
        account.organization_id,
        account.email,
        account.password,
        tokens["access_token"],
        tokens["refresh_token"],
    )


async def logged_in_user(
    client: httpx.AsyncClient, organization_id: uuid.UUID, **fields: Any
) -> Account:
    """Create a user and log them in."""
    return await log_in(client, await create_user(organization_id, **fields))


async def settle(app: FastAPI, timeout: float = 10.0) -> None:
    """Wait until the app's durable deliveries and background listeners have all finished."""
    from sqlalchemy import func, select

    from app.events.outbox.models import OPEN_STATUSES, OutboxDelivery
    from app.events.testing import run_pending

    emitter = app.state.emitter
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        await run_pending(emitter)
        await emitter.drain(timeout=timeout)
        async with session_scope(join=False) as session:
            query = select(func.count()).where(OutboxDelivery.status.in_(OPEN_STATUSES))
            if not await session.scalar(query):
                return
        assert asyncio.get_running_loop().time() < deadline, "durable deliveries never finished"
        await asyncio.sleep(0.02)


async def connect_to_sandbox(
    organization_id: uuid.UUID,
    sandbox_url: str,
    *,
    jwt_private_key: str,
    framework_version: int = 4,
    password: str = "sandbox-password",
) -> None:
    """Point the organisation's Oracle Fusion and Yardi connections at a running sandbox.

    Oracle acts per user with bearer JWTs signed with ``jwt_private_key`` (the sandbox's demo
    key), and as the ``integration`` account (basic) for calls made as no one in particular.
    """
    from pydantic import SecretStr

    from app.integrations.connections.schemas import (
        IntegrationKind,
        OracleFusionChanges,
        YardiChanges,
    )
    from app.integrations.connections.service import set_connection

    secret = SecretStr(password)
    async with session_scope() as session:
        await set_connection(
            session,
            organization_id=organization_id,
            kind=IntegrationKind.ORACLE_FUSION,
            changes=OracleFusionChanges(
                base_url=f"{sandbox_url}/oracle",
                auth_mode="jwt",
                username="integration",
                password=secret,
                jwt_private_key=SecretStr(jwt_private_key),
                jwt_issuer="workflow-hub-tests",
                framework_version=framework_version,
            ),
        )
        await set_connection(
            session,
            organization_id=organization_id,
            kind=IntegrationKind.YARDI,
            changes=YardiChanges(
                base_url=f"{sandbox_url}/yardi",
                username="integration",
                password=secret,
                server_name="sandbox",
                database="sandbox_live",
                platform="SQL Server",
                interface_entity="Workflow Hub",
                interface_license=SecretStr("SANDBOX-LICENSE"),
            ),
        )


def problem_code(response: httpx.Response) -> str:
    """The stable ``code`` of a problem+json response."""
    assert response.headers["content-type"] == "application/problem+json", response.text
    code: str = response.json()["code"]
    return code


# -- fixtures (imported by the conftest of each test package that needs them) ------------------


@pytest.fixture
async def org(app: FastAPI) -> uuid.UUID:
    """An organisation, in a running app."""
    return await create_org()


@pytest.fixture
async def admin(client: httpx.AsyncClient, org: uuid.UUID) -> Account:
    """A logged-in admin (an EMPLOYEE) of ``org``."""
    return await logged_in_user(client, org, role="admin", email="admin@example.com")


@pytest.fixture
async def employee(client: httpx.AsyncClient, org: uuid.UUID) -> Account:
    """A logged-in employee (an EMPLOYEE) of ``org``."""
    return await logged_in_user(
        client,
        org,
        email="employee@example.com",
        first_name="Emma",
        last_name="Employee",
        person_number="100002",
        oracle_username="EMMA.EMPLOYEE",
    )

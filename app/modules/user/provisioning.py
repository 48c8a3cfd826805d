"""Provisioning: organisations with their first admin, and the demo organisation's people."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.security import normalize_email
from app.core.settings import Settings, get_settings
from app.core.tenancy import Organization, get_organization_by_name
from app.modules.user import repository
from app.modules.user.errors import OrganizationExists
from app.modules.user.models import User
from app.modules.user.service import create_user

DEMO_PASSWORD = "demo-password"


@dataclass(frozen=True, slots=True)
class DemoUser:
    email: str
    role: str
    first_name: str
    last_name: str
    person_number: str
    oracle_username: str
    user_type: str = "EMPLOYEE"


DEMO_USERS = (
    DemoUser("admin@example.com", "admin", "Alex", "Admin", "100001", "ALEX.ADMIN"),
    DemoUser("employee@example.com", "employee", "Emma", "Employee", "100002", "EMMA.EMPLOYEE"),
    DemoUser("olivia.brown@example.com", "employee", "Olivia", "Brown", "100003", "OLIVIA.BROWN"),
    DemoUser("liam.smith@example.com", "employee", "Liam", "Smith", "100004", "LIAM.SMITH"),
    DemoUser("noah.garcia@example.com", "employee", "Noah", "Garcia", "100005", "NOAH.GARCIA"),
    DemoUser("contractor@example.com", "employee", "Casey", "Contractor", "", "", "CONTRACTOR"),
)
"""The demo organisation's people. EMPLOYEE person numbers and usernames name workers of the
Oracle Fusion sandbox's deterministic data set."""


async def create_organization(
    session: AsyncSession,
    *,
    settings: Settings,
    name: str,
    admin_email: str,
    admin_password: str,
) -> tuple[Organization, User]:
    """Create an organisation and its first admin (an EMPLOYEE).

    Raises:
        OrganizationExists: the name is taken.
    """
    if await get_organization_by_name(session, name) is not None:
        raise OrganizationExists()
    organization = Organization(name=name)
    session.add(organization)
    await session.flush()
    admin = await create_user(
        session,
        settings=settings,
        organization_id=organization.id,
        email=admin_email,
        password=admin_password,
        role="admin",
        user_type="EMPLOYEE",
    )
    return organization, admin


async def seed_demo(session: AsyncSession, organization: Organization) -> None:
    """Add the demo people to the demo organisation (idempotent)."""
    settings = get_settings()
    for demo in DEMO_USERS:
        email = normalize_email(demo.email)
        if await repository.get_user_by_email(session, organization.id, email) is not None:
            continue
        await create_user(
            session,
            settings=settings,
            organization_id=organization.id,
            email=email,
            password=DEMO_PASSWORD,
            role=demo.role,
            user_type=demo.user_type,
            first_name=demo.first_name,
            last_name=demo.last_name,
            person_number=demo.person_number or None,
            oracle_username=demo.oracle_username or None,
        )

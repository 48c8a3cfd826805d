"""The tenant: every row of every module belongs to one organisation."""

from __future__ import annotations

import uuid

from sqlalchemy import String, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, Timestamps, UUIDPrimaryKey


class Organization(UUIDPrimaryKey, Timestamps, Base):
    """A customer organisation (the tenant)."""

    __tablename__ = "organizations"

    name: Mapped[str] = mapped_column(String(200), unique=True)


async def get_organization(
    session: AsyncSession, organization_id: uuid.UUID
) -> Organization | None:
    """Return the organisation with this id, if it exists."""
    return await session.get(Organization, organization_id)


async def get_organization_by_name(session: AsyncSession, name: str) -> Organization | None:
    """Return the organisation with this name, if it exists."""
    result = await session.execute(select(Organization).where(Organization.name == name))
    return result.scalar_one_or_none()


async def ensure_organization(session: AsyncSession, name: str) -> Organization:
    """Return the organisation with this name, creating it if needed (idempotent)."""
    organization = await get_organization_by_name(session, name)
    if organization is None:
        organization = Organization(name=name)
        session.add(organization)
        await session.flush()
    return organization

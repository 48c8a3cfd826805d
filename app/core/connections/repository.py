"""Queries of integration connections."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.connections.models import IntegrationConnection


async def get(
    session: AsyncSession, *, organization_id: uuid.UUID, kind: str
) -> IntegrationConnection | None:
    """Return the organisation's connection of this kind, if configured."""
    result = await session.execute(
        select(IntegrationConnection).where(
            IntegrationConnection.organization_id == organization_id,
            IntegrationConnection.kind == kind,
        )
    )
    return result.scalar_one_or_none()


async def list_for(
    session: AsyncSession, *, organization_id: uuid.UUID
) -> list[IntegrationConnection]:
    """Return every connection of the organisation, by kind."""
    result = await session.execute(
        select(IntegrationConnection)
        .where(IntegrationConnection.organization_id == organization_id)
        .order_by(IntegrationConnection.kind)
    )
    return list(result.scalars())

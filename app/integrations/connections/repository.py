"""Queries of integration connections."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.tenancy import Organization
from app.integrations.connections.models import IntegrationConnection


class SealedSecrets(NamedTuple):
    """One connection's sealed secrets, and whose they are."""

    id: uuid.UUID
    organization_id: uuid.UUID
    organization_name: str
    kind: str
    secrets: str


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


async def version(
    session: AsyncSession, *, organization_id: uuid.UUID, kind: str
) -> tuple[uuid.UUID, datetime] | None:
    """Return what identifies the stored state of the organisation's connection of this kind
    (its id and ``updated_at``), if configured: two plain columns, nothing decrypted."""
    C = IntegrationConnection
    query = select(C.id, C.updated_at).where(C.organization_id == organization_id, C.kind == kind)
    row = (await session.execute(query)).one_or_none()
    return (row[0], row[1]) if row is not None else None


async def sealed_page(
    session: AsyncSession, *, after: uuid.UUID | None, limit: int
) -> list[SealedSecrets]:
    """Return up to ``limit`` connections' sealed secrets, of every organisation, after ``after``.

    Keyset-paged by id, so a run over every organisation never holds the whole table.
    """
    query = (
        select(
            IntegrationConnection.id,
            IntegrationConnection.organization_id,
            Organization.name,
            IntegrationConnection.kind,
            IntegrationConnection.secrets,
        )
        .join(Organization, Organization.id == IntegrationConnection.organization_id)
        .order_by(IntegrationConnection.id)
        .limit(limit)
    )
    if after is not None:
        query = query.where(IntegrationConnection.id > after)
    result = await session.execute(query)
    return [SealedSecrets(*row) for row in result.all()]


async def replace_secrets(
    session: AsyncSession, *, connection_id: uuid.UUID, sealed: str, resealed: str
) -> bool:
    """Swap the sealed secrets of one connection if they are still ``sealed``.

    A connection changed since it was read (an admin's PUT) is left alone: its new secrets are
    already sealed with the current key. ``updated_at`` is kept: no setting changed.

    Returns:
        Whether the row was swapped.
    """
    result = await session.execute(
        update(IntegrationConnection)
        .where(IntegrationConnection.id == connection_id, IntegrationConnection.secrets == sealed)
        .values(secrets=resealed, updated_at=IntegrationConnection.updated_at)
        .execution_options(synchronize_session=False)
    )
    return int(cast(CursorResult[Any], result).rowcount) == 1

"""Admin REST routes of the organisation's integration connections (secrets are write-only)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from app.core.db import DbSession
from app.core.security import RequireAdmin
from app.integrations.connections import service
from app.integrations.connections.schemas import (
    ConnectionView,
    IntegrationKind,
    OracleFusionChanges,
    YardiChanges,
)

router = APIRouter(prefix="/admin/integrations", tags=["integrations"])


@router.get("/{kind}", response_model=ConnectionView)
async def read_connection(
    kind: IntegrationKind, admin: RequireAdmin, session: DbSession
) -> ConnectionView:
    """Show the organisation's connection: every secret is reported only as set or not."""
    return await service.describe_connection(
        session, organization_id=admin.organization_id, kind=kind
    )


@router.put("/oracle_fusion", response_model=ConnectionView)
async def put_oracle_fusion(
    changes: OracleFusionChanges, admin: RequireAdmin, session: DbSession
) -> ConnectionView:
    """Create or change the Oracle Fusion connection; fields left out keep their value."""
    return await service.set_connection(
        session,
        organization_id=admin.organization_id,
        kind=IntegrationKind.ORACLE_FUSION,
        changes=changes,
    )


@router.put("/yardi", response_model=ConnectionView)
async def put_yardi(
    changes: YardiChanges, admin: RequireAdmin, session: DbSession
) -> ConnectionView:
    """Create or change the Yardi connection; fields left out keep their value."""
    return await service.set_connection(
        session, organization_id=admin.organization_id, kind=IntegrationKind.YARDI, changes=changes
    )


@router.delete("/{kind}", status_code=204, response_class=Response)
async def delete_connection(kind: IntegrationKind, admin: RequireAdmin, session: DbSession) -> None:
    """Remove the connection and its secrets (for instance after the encryption key was lost)."""
    await service.remove_connection(session, organization_id=admin.organization_id, kind=kind)

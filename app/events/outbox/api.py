"""Admin REST routes of the outbox: an organisation's deliveries, dead letters, retry, discard.

Every route needs an admin and sees only the caller's organisation: another tenant's delivery
answers 404, exactly like a missing one.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from app.core.db import DbSession, utcnow
from app.core.security import RequireAdmin
from app.events.app_emitter import AppEmitter
from app.events.outbox import service
from app.events.outbox.models import DeliveryStatus
from app.events.outbox.schemas import MAX_BIGINT, DeliveryDetail, DeliveryPage

router = APIRouter(prefix="/admin/events/deliveries", tags=["events"])

DeliveryIdPath = Annotated[int, Path(ge=1, le=MAX_BIGINT, description="A delivery's id.")]


def _emitter(request: Request) -> AppEmitter | None:
    emitter = getattr(request.app.state, "emitter", None)
    return emitter if isinstance(emitter, AppEmitter) else None


@router.get("", response_model=DeliveryPage)
async def list_deliveries(
    admin: RequireAdmin,
    session: DbSession,
    request: Request,
    status: DeliveryStatus | None = None,
    listener_id: str | None = None,
    event: Annotated[str | None, Query(description="An event name.")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_BIGINT)] = 0,
) -> DeliveryPage:
    """List the organisation's durable deliveries, newest first (``status=dead``: dead letters)."""
    return await service.list_deliveries(
        session,
        status=status,
        listener_id=listener_id,
        event_name=event,
        organization_id=admin.organization_id,
        limit=limit,
        offset=offset,
        emitter=_emitter(request),
    )


@router.get("/{delivery_id}", response_model=DeliveryDetail)
async def read_delivery(
    delivery_id: DeliveryIdPath, admin: RequireAdmin, session: DbSession, request: Request
) -> DeliveryDetail:
    """Inspect a delivery: its event's payload and every failed attempt."""
    return await service.get_delivery(
        session, delivery_id, organization_id=admin.organization_id, emitter=_emitter(request)
    )


@router.post("/{delivery_id}/retry", response_model=DeliveryDetail)
async def retry_delivery(
    delivery_id: DeliveryIdPath, admin: RequireAdmin, session: DbSession, request: Request
) -> DeliveryDetail:
    """Queue a dead, discarded or pending delivery now, with a fresh attempt budget."""
    return await service.retry_delivery(
        session,
        delivery_id,
        now=utcnow(),
        organization_id=admin.organization_id,
        emitter=_emitter(request),
    )


@router.post("/{delivery_id}/discard", response_model=DeliveryDetail)
async def discard_delivery(
    delivery_id: DeliveryIdPath, admin: RequireAdmin, session: DbSession, request: Request
) -> DeliveryDetail:
    """Give up on a dead or pending delivery."""
    return await service.discard_delivery(
        session,
        delivery_id,
        now=utcnow(),
        organization_id=admin.organization_id,
        emitter=_emitter(request),
    )

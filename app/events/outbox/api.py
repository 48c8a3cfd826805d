"""Admin REST routes of the outbox: deliveries, dead letters, retry, discard and replay.

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
from app.events.outbox.schemas import (
    MAX_BIGINT,
    DeliveryDetail,
    DeliveryPage,
    ReplayRequest,
    ReplayResult,
)

router = APIRouter(prefix="/admin/events", tags=["events"])

DeliveryIdPath = Annotated[int, Path(ge=1, le=MAX_BIGINT, description="A delivery's id.")]


def _emitter(request: Request) -> AppEmitter | None:
    emitter = getattr(request.app.state, "emitter", None)
    return emitter if isinstance(emitter, AppEmitter) else None


@router.get("/deliveries", response_model=DeliveryPage)
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


@router.get("/deliveries/{delivery_id}", response_model=DeliveryDetail)
async def read_delivery(
    delivery_id: DeliveryIdPath, admin: RequireAdmin, session: DbSession, request: Request
) -> DeliveryDetail:
    """Inspect a delivery: its event's payload and every failed attempt."""
    return await service.get_delivery(
        session, delivery_id, organization_id=admin.organization_id, emitter=_emitter(request)
    )


@router.post("/deliveries/{delivery_id}/retry", response_model=DeliveryDetail)
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


@router.post("/deliveries/{delivery_id}/discard", response_model=DeliveryDetail)
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


@router.post("/replay", response_model=ReplayResult, status_code=202)
async def replay_events(
    body: ReplayRequest, admin: RequireAdmin, session: DbSession, request: Request
) -> ReplayResult:
    """Queue the organisation's stored events matching a pattern to one durable listener.

    This is how a new listener is backfilled. Events that already have an open delivery for the
    listener are skipped, so replaying twice does not double the work still queued.
    """
    emitter = _emitter(request)
    if emitter is None:
        raise service.UnknownListener("this process has no application emitter")
    return await service.replay(
        session,
        emitter=emitter,
        pattern=body.pattern,
        listener_id=body.listener_id,
        since=body.since,
        until=body.until,
        now=utcnow(),
        organization_id=admin.organization_id,
    )

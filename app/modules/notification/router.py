"""REST routes of the notification module: the caller's devices, notifications, preferences."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from app.core.db import DbSession, ReadSession
from app.core.schemas import Page
from app.core.security import CallerReading, CurrentUser
from app.modules.notification import devices, preferences, service
from app.modules.notification.schemas import (
    DeviceCreate,
    DeviceRead,
    NotificationRead,
    Preferences,
    ReadAll,
    UnreadCount,
)

router = APIRouter(tags=["notification"])

MAX_OFFSET = 2**63 - 1
"""The largest offset a database integer holds; a larger one is refused with a 422."""
Limit = Annotated[int, Query(ge=1, le=200)]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET)]


@router.post("/devices", response_model=DeviceRead, status_code=status.HTTP_201_CREATED)
async def register_device(
    body: DeviceCreate, principal: CurrentUser, session: DbSession
) -> DeviceRead:
    """Register a push device for the caller (a token another user held moves to the caller)."""
    device = await devices.register_device(
        session,
        organization_id=principal.organization_id,
        user_id=principal.user_id,
        token=body.token,
        platform=body.platform,
        name=body.name,
    )
    return DeviceRead.model_validate(device)


@router.get("/devices", response_model=Page[DeviceRead])
async def list_devices(
    principal: CurrentUser, session: DbSession, limit: Limit = 50, offset: Offset = 0
) -> Page[DeviceRead]:
    """List the caller's active push devices, newest first."""
    rows, total = await devices.list_devices(
        session, user_id=principal.user_id, limit=limit, offset=offset
    )
    items = [DeviceRead.model_validate(row) for row in rows]
    return Page[DeviceRead](items=items, total=total, limit=limit, offset=offset)


@router.delete("/devices/{device_id}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_device(
    device_id: uuid.UUID, principal: CurrentUser, session: DbSession
) -> Response:
    """Stop pushing to one of the caller's devices and unsubscribe its topics."""
    await devices.remove_device(session, user_id=principal.user_id, device_id=device_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/notifications", response_model=Page[NotificationRead])
async def list_notifications(
    principal: CurrentUser,
    session: DbSession,
    unread: bool = False,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[NotificationRead]:
    """List the caller's notifications, newest first; ``unread=true`` keeps the unread ones."""
    rows, total = await service.list_notifications(
        session, user_id=principal.user_id, unread=unread, limit=limit, offset=offset
    )
    items = [NotificationRead.model_validate(row) for row in rows]
    return Page[NotificationRead](items=items, total=total, limit=limit, offset=offset)


@router.get("/notifications/unread-count", response_model=UnreadCount)
async def unread_count(principal: CallerReading, session: ReadSession) -> UnreadCount:
    """Count the caller's unread notifications (the badge)."""
    return UnreadCount(count=await service.unread_count(session, user_id=principal.user_id))


@router.get("/notifications/preferences", response_model=Preferences)
async def read_preferences(principal: CallerReading, session: ReadSession) -> Preferences:
    """Return the caller's push preferences and quiet hours."""
    return await preferences.get_preferences(session, user_id=principal.user_id)


@router.put("/notifications/preferences", response_model=Preferences)
async def write_preferences(
    body: Preferences, principal: CurrentUser, session: DbSession
) -> Preferences:
    """Replace the caller's push preferences and quiet hours."""
    return await preferences.set_preferences(
        session,
        organization_id=principal.organization_id,
        user_id=principal.user_id,
        wanted=body,
    )


@router.post("/notifications/read-all", response_model=ReadAll)
async def read_all(principal: CurrentUser, session: DbSession) -> ReadAll:
    """Mark every unread notification of the caller read; answer how many changed."""
    return ReadAll(updated=await service.mark_all_read(session, user_id=principal.user_id))


@router.post("/notifications/{notification_id}/read", response_model=NotificationRead)
async def read_notification(
    notification_id: uuid.UUID, principal: CurrentUser, session: DbSession
) -> NotificationRead:
    """Mark one of the caller's notifications read."""
    notification = await service.mark_read(
        session, user_id=principal.user_id, notification_id=notification_id
    )
    return NotificationRead.model_validate(notification)

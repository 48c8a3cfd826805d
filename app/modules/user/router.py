"""REST routes of the user module: the caller's profile, admin user management, resyncs."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from app.contracts.user import Role, UserType
from app.core.db import DbSession
from app.core.schemas import Page
from app.core.security import CurrentSettings, CurrentUser, RequireAdmin, RequireEmployeeType
from app.core.tenancy import get_organization
from app.modules.user import service, sync
from app.modules.user.models import User
from app.modules.user.repository import UserFilter
from app.modules.user.schemas import (
    LineManagerRead,
    MeRead,
    OrganizationRead,
    ResyncAccepted,
    UserCreate,
    UserRead,
    UserUpdate,
)

router = APIRouter(tags=["user"])

MAX_OFFSET = 2**63 - 1
"""The largest offset a database integer holds; a larger one is refused with a 422."""


@router.get("/users/me", response_model=MeRead)
async def read_me(principal: CurrentUser, session: DbSession) -> MeRead:
    """Return the caller: role, type, organisation, profile fields and line managers."""
    user = await service.get_user(
        session,
        organization_id=principal.organization_id,
        user_id=principal.user_id,
        with_managers=True,
    )
    return await _me(session, user)


@router.put("/users/me/sync-profile", response_model=MeRead)
async def sync_my_profile(
    principal: RequireEmployeeType, session: DbSession, first_time: bool = False
) -> MeRead:
    """Refresh the caller's profile from Oracle Fusion HCM and wait for the pipeline."""
    user = await sync.sync_my_profile(session, principal=principal, first_time=first_time)
    return await _me(session, user)


@router.get("/users", response_model=Page[UserRead])
async def list_users(
    admin: RequireAdmin,
    session: DbSession,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    role: Role | None = None,
    user_type: Annotated[UserType | None, Query(alias="type")] = None,
    active: bool | None = None,
    include_deleted: bool = False,
) -> Page[UserRead]:
    """List the organisation's users, paged; filter by role, type and active."""
    users, total = await service.list_users(
        session,
        organization_id=admin.organization_id,
        filters=UserFilter(
            role=role, user_type=user_type, is_active=active, include_deleted=include_deleted
        ),
        limit=limit,
        offset=offset,
    )
    items = [UserRead.model_validate(user) for user in users]
    return Page[UserRead](items=items, total=total, limit=limit, offset=offset)


@router.post("/users", response_model=UserRead, status_code=status.HTTP_201_CREATED)
async def create_user(
    body: UserCreate, admin: RequireAdmin, session: DbSession, settings: CurrentSettings
) -> UserRead:
    """Add a user to the organisation."""
    user = await service.create_user(
        session,
        settings=settings,
        organization_id=admin.organization_id,
        email=body.email,
        password=body.password,
        role=body.role,
        user_type=body.user_type,
        first_name=body.first_name,
        last_name=body.last_name,
        oracle_username=body.oracle_username,
        person_number=body.person_number,
    )
    return UserRead.model_validate(user)


@router.get("/users/{user_id}", response_model=UserRead)
async def read_user(user_id: uuid.UUID, admin: RequireAdmin, session: DbSession) -> UserRead:
    """Return one user of the organisation."""
    user = await service.get_user(session, organization_id=admin.organization_id, user_id=user_id)
    return UserRead.model_validate(user)


@router.patch("/users/{user_id}", response_model=UserRead)
async def update_user(
    user_id: uuid.UUID,
    body: UserUpdate,
    admin: RequireAdmin,
    session: DbSession,
    settings: CurrentSettings,
) -> UserRead:
    """Change a user; only the fields sent change."""
    user = await service.update_user(
        session, settings=settings, actor=admin, user_id=user_id, changes=body.changes()
    )
    return UserRead.model_validate(user)


@router.delete("/users/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_user(user_id: uuid.UUID, admin: RequireAdmin, session: DbSession) -> Response:
    """Soft-delete a user: inactive, deleted, and logged out everywhere."""
    await service.delete_user(session, actor=admin, user_id=user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/admin/users/{user_id}/resync",
    response_model=ResyncAccepted,
    status_code=status.HTTP_202_ACCEPTED,
    tags=["admin"],
)
async def resync_user(
    user_id: uuid.UUID, admin: RequireAdmin, session: DbSession
) -> ResyncAccepted:
    """Resync one employee's profile from Oracle Fusion (durably, in the background)."""
    await sync.request_resync(session, actor=admin, user_id=user_id)
    return ResyncAccepted(scope="user", user_id=user_id)


@router.post(
    "/admin/organization/resync",
    response_model=ResyncAccepted,
    status_code=status.HTTP_202_ACCEPTED,
    tags=["admin"],
)
async def resync_organization(admin: RequireAdmin, session: DbSession) -> ResyncAccepted:
    """Resync every active employee's profile, page by page (durably, in the background)."""
    await sync.request_resync(session, actor=admin)
    return ResyncAccepted(scope="organization")


async def _me(session: DbSession, user: User) -> MeRead:
    organization = await get_organization(session, user.organization_id)
    base = UserRead.model_validate(user).model_dump()
    return MeRead(
        **base,
        work_email=user.work_email,
        job=user.job,
        department=user.department,
        business_unit=user.business_unit,
        profile_synced_at=user.profile_synced_at,
        line_managers=[LineManagerRead.model_validate(m) for m in user.line_managers],
        organization=OrganizationRead.model_validate(organization),
    )

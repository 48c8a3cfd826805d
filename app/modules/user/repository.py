"""Queries of the user module. Every user query is scoped to one organisation."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from app.modules.user.models import DeviceSession, User

S = TypeVar("S", bound=Select[Any])


@dataclass(frozen=True, slots=True)
class UserFilter:
    """What an admin's user list narrows down to."""

    role: str | None = None
    user_type: str | None = None
    is_active: bool | None = None
    include_deleted: bool = False


async def get_user(
    session: AsyncSession,
    organization_id: uuid.UUID,
    user_id: uuid.UUID,
    *,
    with_managers: bool = False,
) -> User | None:
    """Return the user of this organisation with this id (another tenant's id finds nothing)."""
    query = select(User).where(User.organization_id == organization_id, User.id == user_id)
    if with_managers:
        query = query.options(selectinload(User.line_managers))
    return (await session.scalars(query)).one_or_none()


async def get_user_by_email(
    session: AsyncSession, organization_id: uuid.UUID, email: str
) -> User | None:
    query = select(User).where(User.organization_id == organization_id, User.email == email)
    return (await session.scalars(query)).one_or_none()


async def list_users(
    session: AsyncSession,
    organization_id: uuid.UUID,
    filters: UserFilter,
    *,
    limit: int,
    offset: int,
) -> tuple[Sequence[User], int]:
    """Return one page of the organisation's users, and how many match in all."""
    query = _filtered(select(User), organization_id, filters)
    total = await session.scalar(_filtered(select(func.count(User.id)), organization_id, filters))
    page = query.order_by(User.created_at, User.id).limit(limit).offset(offset)
    return (await session.scalars(page)).all(), int(total or 0)


def _filtered(query: S, organization_id: uuid.UUID, filters: UserFilter) -> S:
    query = query.where(User.organization_id == organization_id)
    if filters.role is not None:
        query = query.where(User.role == filters.role)
    if filters.user_type is not None:
        query = query.where(User.user_type == filters.user_type)
    if filters.is_active is not None:
        query = query.where(User.is_active.is_(filters.is_active))
    if not filters.include_deleted:
        query = query.where(User.is_deleted.is_(False))
    return query


async def active_employees_page(
    session: AsyncSession,
    organization_id: uuid.UUID,
    *,
    after: uuid.UUID | None,
    limit: int,
    user_id: uuid.UUID | None = None,
) -> Sequence[User]:
    """Return the next page of active EMPLOYEE users, by id (keyset paging)."""
    query = select(User).where(
        User.organization_id == organization_id,
        User.user_type == "EMPLOYEE",
        User.is_active.is_(True),
        User.is_deleted.is_(False),
    )
    if user_id is not None:
        query = query.where(User.id == user_id)
    if after is not None:
        query = query.where(User.id > after)
    return (await session.scalars(query.order_by(User.id).limit(limit))).all()


@dataclass(frozen=True, slots=True)
class SyncSubject:
    """What a sync request carries about a user."""

    id: uuid.UUID
    email: str
    oracle_username: str | None
    person_number: str | None


async def active_users_page(
    session: AsyncSession,
    organization_id: uuid.UUID,
    *,
    after: uuid.UUID | None,
    limit: int,
    employees_only: bool = False,
) -> list[SyncSubject]:
    """Return the next page of active users (only EMPLOYEEs if asked), by id (keyset paging)."""
    query = select(User.id, User.email, User.oracle_username, User.person_number).where(
        User.organization_id == organization_id,
        User.is_active.is_(True),
        User.is_deleted.is_(False),
    )
    if employees_only:
        query = query.where(User.user_type == "EMPLOYEE")
    if after is not None:
        query = query.where(User.id > after)
    rows = (await session.execute(query.order_by(User.id).limit(limit))).all()
    return [SyncSubject(*row) for row in rows]


async def get_device_session(session: AsyncSession, session_id: uuid.UUID) -> DeviceSession | None:
    query = select(DeviceSession).where(DeviceSession.session_id == session_id)
    return (await session.scalars(query)).one_or_none()

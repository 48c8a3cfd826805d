"""Users of an organisation: create, read, change, soft-delete, and their device sessions.

Lifecycle events (``user.created``, ``user.updated``, ``user.deleted``) are published after the
change is flushed, inside the same transaction: inline listeners (auth's credentials) commit with
it. A failing listener is logged and never fails the change, except for the auth-critical
events (``user.deleted``, and ``user.updated`` changing ``is_active``, ``role`` or
``user_type``): their listeners end or downgrade the user's sessions, so a failure there fails
the change (503 ``session_revocation_failed``) rather than leaving the sessions live.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.contracts.auth import UserLoggedIn, UserLoggedOut
from app.contracts.user import (
    UserCreated,
    UserCredentialsChanged,
    UserDeleted,
    UserSnapshot,
    UserUpdated,
)
from app.core.db import utcnow
from app.core.security import ADMIN, Principal, hash_password, normalize_email
from app.core.settings import Settings
from app.events import publish
from app.modules.user import repository
from app.modules.user.errors import (
    CannotChangeOwnAccess,
    EmailTaken,
    SessionRevocationFailed,
    UserIsDeleted,
    UserNotFound,
)
from app.modules.user.models import DeviceSession, User
from app.modules.user.repository import UserFilter

logger = logging.getLogger(__name__)

PROFILE_FIELDS = (
    "email",
    "role",
    "user_type",
    "is_active",
    "first_name",
    "last_name",
    "oracle_username",
    "person_number",
)
"""What an admin may change (besides the password)."""

ACCESS_FIELDS = frozenset({"is_active", "role", "user_type"})
"""Changing one of these must reach the user's sessions, or the change fails."""


def snapshot(user: User) -> UserSnapshot:
    """What listeners need to know about a user, without asking this module."""
    return UserSnapshot(
        email=user.email,
        role=user.role,
        user_type=user.user_type,
        first_name=user.first_name,
        last_name=user.last_name,
        oracle_username=user.oracle_username,
        person_number=user.person_number,
        is_active=user.is_active,
    )


async def get_user(
    session: AsyncSession,
    *,
    organization_id: uuid.UUID,
    user_id: uuid.UUID,
    with_managers: bool = False,
) -> User:
    """Return a user of the organisation.

    Raises:
        UserNotFound: no user of this organisation has this id.
    """
    user = await repository.get_user(session, organization_id, user_id, with_managers=with_managers)
    if user is None:
        raise UserNotFound()
    return user


async def list_users(
    session: AsyncSession,
    *,
    organization_id: uuid.UUID,
    filters: UserFilter,
    limit: int,
    offset: int,
) -> tuple[Sequence[User], int]:
    """Return one page of the organisation's users and the total that match."""
    return await repository.list_users(
        session, organization_id, filters, limit=limit, offset=offset
    )


async def create_user(
    session: AsyncSession,
    *,
    settings: Settings,
    organization_id: uuid.UUID,
    email: str,
    password: str | None,
    role: str = "employee",
    user_type: str = "EMPLOYEE",
    first_name: str | None = None,
    last_name: str | None = None,
    oracle_username: str | None = None,
    person_number: str | None = None,
) -> User:
    """Add a user to the organisation; emits ``user.created`` (and the password's hash).

    Raises:
        EmailTaken: another user of the organisation has this email.
    """
    email = normalize_email(email)
    if await repository.get_user_by_email(session, organization_id, email) is not None:
        raise EmailTaken()
    user = User(
        organization_id=organization_id,
        email=email,
        role=role,
        user_type=user_type,
        first_name=first_name,
        last_name=last_name,
        display_name=_display_name(first_name, last_name),
        oracle_username=oracle_username,
        person_number=person_number,
        is_active=True,
        is_deleted=False,
    )
    session.add(user)
    await _flush_unique(session)
    await publish(
        UserCreated(organization_id=organization_id, user_id=user.id, user=snapshot(user)),
    )
    if password is not None:
        await _publish_password(settings, user, password)
    return user


async def update_user(
    session: AsyncSession,
    *,
    settings: Settings,
    actor: Principal,
    user_id: uuid.UUID,
    changes: dict[str, Any],
) -> User:
    """Change a user; emits ``user.updated`` naming the changed fields.

    Raises:
        UserNotFound: no user of the actor's organisation has this id.
        UserIsDeleted: the user was deleted.
        CannotChangeOwnAccess: an admin demoting or deactivating themselves.
        EmailTaken: the new email belongs to another user of the organisation.
        SessionRevocationFailed: an access change did not reach the user's sessions.
    """
    user = await get_user(session, organization_id=actor.organization_id, user_id=user_id)
    if user.is_deleted:
        raise UserIsDeleted()
    changes = dict(changes)
    password = changes.pop("password", None)
    if "email" in changes:
        changes["email"] = normalize_email(changes["email"])
    if user.id == actor.user_id and (
        changes.get("role", ADMIN) != ADMIN or changes.get("is_active", True) is False
    ):
        raise CannotChangeOwnAccess()
    changed = sorted(
        name
        for name, value in changes.items()
        if name in PROFILE_FIELDS and getattr(user, name) != value
    )
    if "email" in changed and await repository.get_user_by_email(
        session, user.organization_id, changes["email"]
    ):
        raise EmailTaken()
    for name in changed:
        setattr(user, name, changes[name])
    if {"first_name", "last_name"} & set(changed):
        user.display_name = _display_name(user.first_name, user.last_name)
    if changed:
        await _flush_unique(session)
        event = UserUpdated(
            organization_id=user.organization_id,
            user_id=user.id,
            changed_fields=tuple(changed),
            user=snapshot(user),
        )
        if ACCESS_FIELDS & set(changed):
            await _publish_access_change(event)
        else:
            await publish(event)
    if password is not None:
        # A new password ends the user's other sessions (a reset locks out whoever had it).
        kept = actor.session_id if actor.user_id == user.id else None
        await _publish_password(settings, user, password, kept_session_id=kept, must_apply=True)
    return user


async def delete_user(session: AsyncSession, *, actor: Principal, user_id: uuid.UUID) -> None:
    """Soft-delete a user (inactive and deleted; they can't log in); emits ``user.deleted``.

    Deleting an already deleted user changes nothing.

    Raises:
        SessionRevocationFailed: the user's sessions could not be ended (nothing changes).
    """
    user = await get_user(session, organization_id=actor.organization_id, user_id=user_id)
    if user.id == actor.user_id:
        raise CannotChangeOwnAccess()
    if user.is_deleted:
        return
    user.is_active = False
    user.is_deleted = True
    user.deleted_at = utcnow()
    await session.flush()
    await _publish_access_change(UserDeleted(organization_id=user.organization_id, user_id=user.id))


async def _publish_access_change(
    event: UserUpdated | UserDeleted | UserCredentialsChanged,
) -> None:
    """Publish an event whose listeners end or downgrade the user's sessions; they must succeed.

    Raises:
        SessionRevocationFailed: an inline listener failed; the caller's transaction rolls
            back, so the change and the sessions stay consistent.
    """
    try:
        await publish(event, raise_errors=True)
    except ExceptionGroup as failures:
        logger.error(
            "%s of user %s failed in %d listener(s); the change is refused",
            event.name,
            event.user_id,
            len(failures.exceptions),
        )
        raise SessionRevocationFailed() from failures


async def record_device_login(session: AsyncSession, *, event: UserLoggedIn) -> None:
    """Remember a login and the device it registered, if any."""
    if await repository.get_device_session(session, event.session_id) is not None:
        return
    user = await repository.get_user(session, event.organization_id, event.user_id)
    if user is None:
        return
    device = event.device
    session.add(
        DeviceSession(
            organization_id=event.organization_id,
            user_id=event.user_id,
            session_id=event.session_id,
            device_token=device.token if device else None,
            platform=device.platform if device else None,
            device_name=device.name if device else None,
            logged_in_at=utcnow(),
        )
    )
    await session.flush()


async def end_device_session(session: AsyncSession, *, event: UserLoggedOut) -> None:
    """Mark the device session of an ended auth session as logged out."""
    device_session = await repository.get_device_session(session, event.session_id)
    if device_session is not None and device_session.logged_out_at is None:
        device_session.logged_out_at = utcnow()
        await session.flush()


async def _publish_password(
    settings: Settings,
    user: User,
    password: str,
    *,
    kept_session_id: uuid.UUID | None = None,
    must_apply: bool = False,
) -> None:
    """Publish the new password's hash; ``must_apply`` when sessions must end with it."""
    event = UserCredentialsChanged(
        organization_id=user.organization_id,
        user_id=user.id,
        password_hash=hash_password(settings, password),
        kept_session_id=kept_session_id,
    )
    if must_apply:
        await _publish_access_change(event)
    else:
        await publish(event)


async def _flush_unique(session: AsyncSession) -> None:
    try:
        await session.flush()
    except IntegrityError as exc:  # a concurrent request took the email first
        raise EmailTaken() from exc


def _display_name(first_name: str | None, last_name: str | None) -> str | None:
    return " ".join(part for part in (first_name, last_name) if part) or None

"""The user module's part of the profile pipeline.

``PUT /users/me/sync-profile`` publishes ``user.syncProfile`` and awaits it; the hr module reads
HCM and publishes ``hr.profile.synced``; this module stores the profile and line managers, then
publishes ``user.sync.task.notifications``. Admin resyncs fan out one ``user.syncProfile`` per
active EMPLOYEE, page by page (:func:`resync_page`), from a durable listener: the request is
written to the outbox with the admin's transaction and the relay runs it (with retries), so a
restart does not lose it.
"""

from __future__ import annotations

import logging
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from app.contracts.hr import WorkerProfileSynced
from app.contracts.user import (
    UserProfileSyncRequested,
    UserResyncRequested,
    UserTaskSyncRequested,
    UserUpdated,
)
from app.core.db import utcnow
from app.core.errors import AppError, retry_after_value
from app.core.security import EMPLOYEE_TYPE, Principal, UserNotEmployee
from app.events import publish
from app.integrations.errors import IntegrationError
from app.modules.user import repository
from app.modules.user.errors import ProfileSyncFailed, UserInactive
from app.modules.user.models import LineManager, User
from app.modules.user.service import get_user, snapshot

logger = logging.getLogger(__name__)

SYNCED_FIELDS = (
    "person_number",
    "first_name",
    "last_name",
    "display_name",
    "work_email",
    "job",
    "department",
    "business_unit",
)
"""Profile fields HCM owns; a value it does not report is left as it was."""


async def sync_my_profile(
    session: AsyncSession, *, principal: Principal, first_time: bool = False
) -> User:
    """Run the profile pipeline for the caller and return the refreshed user.

    Raises:
        UserNotEmployee: only EMPLOYEE users have an HCM profile.
        WorkerNotFound: HCM knows neither the user's person number nor their username (404
            ``worker_not_found``, raised by the hr module).
        ProfileSyncFailed: a listener of the pipeline failed (Oracle down, for example).
    """
    user = await get_user(
        session, organization_id=principal.organization_id, user_id=principal.user_id
    )
    if user.user_type != EMPLOYEE_TYPE:
        raise UserNotEmployee()
    try:
        await publish(
            UserProfileSyncRequested(
                organization_id=user.organization_id,
                user_id=user.id,
                oracle_username=user.oracle_username,
                person_number=user.person_number,
                first_time=first_time,
                requested_by="user",
            ),
            raise_errors=True,
        )
    except ExceptionGroup as failures:
        raise _sync_failure(_leaves(failures)) from failures
    return await get_user(
        session, organization_id=user.organization_id, user_id=user.id, with_managers=True
    )


async def request_resync(
    session: AsyncSession, *, actor: Principal, user_id: uuid.UUID | None = None
) -> None:
    """Ask for a resync of one employee, or of every active employee of the organisation.

    The fan-out is durable and runs in the relay; the admin does not wait for it.

    Raises:
        UserNotFound: no user of the admin's organisation has this id.
        UserNotEmployee: the user is not an EMPLOYEE.
        UserInactive: the user is deactivated or deleted.
    """
    if user_id is not None:
        user = await get_user(session, organization_id=actor.organization_id, user_id=user_id)
        if user.user_type != EMPLOYEE_TYPE:
            raise UserNotEmployee()
        if not user.is_active or user.is_deleted:
            raise UserInactive()
    await publish(
        UserResyncRequested(
            organization_id=actor.organization_id,
            user_id=user_id,
            requested_by_user_id=actor.user_id,
        )
    )


async def resync_page(
    session: AsyncSession, *, event: UserResyncRequested, after: uuid.UUID | None, limit: int
) -> list[UserProfileSyncRequested]:
    """Return the ``user.syncProfile`` requests of the next page of employees in scope.

    Pages are by user id (keyset): pass the last request's ``user_id`` as ``after``; a page
    shorter than ``limit`` is the last one.
    """
    page = await repository.active_employees_page(
        session, event.organization_id, after=after, limit=limit, user_id=event.user_id
    )
    return [
        UserProfileSyncRequested(
            organization_id=user.organization_id,
            user_id=user.id,
            oracle_username=user.oracle_username,
            person_number=user.person_number,
            requested_by="admin",
        )
        for user in page
    ]


async def store_worker_profile(session: AsyncSession, *, event: WorkerProfileSynced) -> None:
    """Persist what HCM reported, then ask every source for the user's pending tasks."""
    user = await repository.get_user(
        session, event.organization_id, event.user_id, with_managers=True
    )
    if user is None or user.is_deleted:
        logger.warning("profile for unknown or deleted user %s ignored", event.user_id)
        return
    changed = []
    for name in SYNCED_FIELDS:
        value = getattr(event.profile, name)
        if value is not None and getattr(user, name) != value:
            setattr(user, name, value)
            changed.append(name)
    managers = [(m.person_number, m.display_name, m.email) for m in event.line_managers]
    if managers != [(m.person_number, m.display_name, m.email) for m in user.line_managers]:
        user.line_managers = [
            LineManager(position=i, person_number=number, display_name=name, email=email)
            for i, (number, name, email) in enumerate(managers)
        ]
        changed.append("line_managers")
    user.profile_synced_at = utcnow()
    await session.flush()
    if changed:
        await publish(
            UserUpdated(
                organization_id=user.organization_id,
                user_id=user.id,
                changed_fields=tuple(changed),
                user=snapshot(user),
            ),
        )
    await publish(
        UserTaskSyncRequested(
            organization_id=user.organization_id,
            user_id=user.id,
            email=user.email,
            oracle_username=user.oracle_username,
            person_number=user.person_number,
            requested_by="profile_sync",
        ),
    )


TRANSIENT_KINDS = frozenset({"unavailable", "rate_limited"})
"""Integration failures that pass: the caller is told to come back (503 with Retry-After)."""
CALLER_FACING_CODES = frozenset({"worker_not_found"})
"""Pipeline errors that answer the caller as they are: the pipeline worked, and its answer is
about the caller (HCM does not know them), not about a system failing."""


def _sync_failure(failures: list[BaseException]) -> AppError:
    """Name each failure's cause; 503 with Retry-After when every one of them is transient.

    A failure that answers the caller (``worker_not_found``) is handed back as it is when it is
    the only one.
    """
    if (
        len(failures) == 1
        and isinstance(failures[0], AppError)
        and failures[0].code in CALLER_FACING_CODES
    ):
        return failures[0]
    causes: set[str] = set()
    waits: list[float] = []
    transient = True
    for exc in failures:
        if isinstance(exc, IntegrationError):
            causes.add(f"upstream_{exc.kind}")
            transient = transient and exc.kind in TRANSIENT_KINDS
            waits.append(exc.retry_after or 0)
        else:
            causes.add(exc.code if isinstance(exc, AppError) else "internal_error")
            transient = False
    if not transient:
        return ProfileSyncFailed(causes=sorted(causes))
    retry_after = retry_after_value(max(waits, default=0))
    return ProfileSyncFailed(
        "Oracle Fusion is unavailable or throttling us; retry later.",
        status=503,
        headers={"Retry-After": retry_after},
        causes=sorted(causes),
    )


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    found: list[BaseException] = []
    for exc in group.exceptions:
        found.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return found

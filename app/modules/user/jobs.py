"""The user module's crons: the task sweep and the weekly profile sync.

Each is a fan-out: the scheduler pages through the organisation's users with these functions
(keyset, by id) and writes one durable event per user, one transaction a page. The events carry
the run id, so a page written twice after a crash stores each user's event once.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from app.contracts.user import UserProfileSyncRequested, UserTaskSyncRequested
from app.core.modules import FanOutItem, JobContext, JobSpec
from app.core.settings import get_settings
from app.modules.user import repository


async def task_sweep_page(
    session: AsyncSession, context: JobContext, after: str | None, limit: int
) -> Sequence[FanOutItem]:
    """One ``user.sync.task.notifications`` per active user (every type: Yardi has contractors)."""
    users = await repository.active_users_page(
        session, context.organization_id, after=_user_id(after), limit=limit
    )
    return [
        FanOutItem(
            key=str(user.id),
            event=UserTaskSyncRequested(
                organization_id=context.organization_id,
                user_id=user.id,
                email=user.email,
                oracle_username=user.oracle_username,
                person_number=user.person_number,
                requested_by="scheduler",
                run_id=context.run_id,
            ),
        )
        for user in users
    ]


async def profile_sync_page(
    session: AsyncSession, context: JobContext, after: str | None, limit: int
) -> Sequence[FanOutItem]:
    """One ``user.syncProfile`` per active EMPLOYEE (only they have an HCM profile)."""
    users = await repository.active_users_page(
        session, context.organization_id, after=_user_id(after), limit=limit, employees_only=True
    )
    return [
        FanOutItem(
            key=str(user.id),
            event=UserProfileSyncRequested(
                organization_id=context.organization_id,
                user_id=user.id,
                oracle_username=user.oracle_username,
                person_number=user.person_number,
                requested_by="scheduler",
                run_id=context.run_id,
            ),
        )
        for user in users
    ]


def _user_id(key: str | None) -> uuid.UUID | None:
    return uuid.UUID(key) if key is not None else None


task_sweep = JobSpec(
    id="task_sweep",
    cron=lambda: get_settings().scheduler.task_sweep_cron,
    cron_setting="SCHEDULER_TASK_SWEEP_CRON",
    description="Ask every source for each active user's pending approvals",
    fan_out=task_sweep_page,
)

profile_sync = JobSpec(
    id="profile_sync",
    cron=lambda: get_settings().scheduler.profile_sync_cron,
    cron_setting="SCHEDULER_PROFILE_SYNC_CRON",
    description="Refresh each active EMPLOYEE's profile and line managers from Oracle HCM",
    fan_out=profile_sync_page,
)

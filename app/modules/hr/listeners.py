"""Listeners of the hr module: the profile pipeline, the user's identity, the task sync and
the audit trail.

A user's own profile sync runs inline, so that ``PUT /users/me/sync-profile`` awaits it and
answers with its outcome. A scheduled or admin sync runs durably, one user per delivery, in the
relays of every instance and retried on its own; a failure retrying cannot fix (HCM does not know
the worker, Oracle is not configured) is a dead letter at once: recorded, not retried.
"""

from __future__ import annotations

from app.contracts.hr import HrApprovalAudited
from app.contracts.user import (
    UserCreated,
    UserDeleted,
    UserProfileSyncRequested,
    UserTaskSyncRequested,
    UserUpdated,
)
from app.core.db import session_scope
from app.core.inbox.source import InboxUser
from app.events import RetryPolicy, current_event_id, listener
from app.modules.hr import profile
from app.modules.hr.service import inbox

PROFILE_SYNC_RETRY = RetryPolicy(max_attempts=5, base_delay=30.0, max_delay=1800.0)


@listener(UserProfileSyncRequested)
async def when_profile_sync_requested_by_user_read_worker(
    event: UserProfileSyncRequested,
) -> None:
    if event.requested_by != "user":
        return  # the durable listener below has it
    async with session_scope() as session:
        await profile.sync_worker_profile(session, event=event)


@listener(
    UserProfileSyncRequested,
    delivery="durable",
    listener_id="hr.profile.sync",
    retry=PROFILE_SYNC_RETRY,
)
async def when_profile_sync_scheduled_read_worker(event: UserProfileSyncRequested) -> None:
    if event.requested_by == "user":
        return  # answered inline, in the user's request
    async with session_scope() as session:
        await profile.sync_scheduled_profile(session, event=event)


@listener(UserCreated)
async def when_user_created_remember_identity(event: UserCreated) -> None:
    await inbox.remember_user(InboxUser.of(event.organization_id, event.user_id, event.user))


@listener(UserUpdated)
async def when_user_updated_remember_identity(event: UserUpdated) -> None:
    await inbox.remember_user(InboxUser.of(event.organization_id, event.user_id, event.user))


@listener(UserDeleted)
async def when_user_deleted_stop_syncing(event: UserDeleted) -> None:
    await inbox.forget_user(event.organization_id, event.user_id)


@listener(
    UserTaskSyncRequested,
    delivery="durable",
    listener_id="hr.tasks.sync",
    retry=RetryPolicy(max_attempts=5, base_delay=5.0, max_delay=120.0),
)
async def when_task_sync_requested_sync_inbox(event: UserTaskSyncRequested) -> None:
    await inbox.sync_requested(event, sync_id=current_event_id())


@listener(
    HrApprovalAudited,
    delivery="durable",
    listener_id="hr.approvals.audit",
    retry=RetryPolicy(max_attempts=10, base_delay=1.0, max_delay=300.0),
)
async def when_approval_audited_write_record(event: HrApprovalAudited) -> None:
    await inbox.record_approval(event)

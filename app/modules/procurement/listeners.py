"""Listeners of the procurement module: the user's identity, the task sync, the audit trail."""

from __future__ import annotations

from app.contracts.procurement import ProcurementApprovalAudited
from app.contracts.user import UserCreated, UserDeleted, UserTaskSyncRequested, UserUpdated
from app.core.inbox.source import InboxUser
from app.events import RetryPolicy, current_event_id, listener
from app.modules.procurement.service import inbox


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
    listener_id="procurement.tasks.sync",
    retry=RetryPolicy(max_attempts=5, base_delay=5.0, max_delay=120.0),
)
async def when_task_sync_requested_sync_inbox(event: UserTaskSyncRequested) -> None:
    await inbox.sync_requested(event, sync_id=current_event_id())


@listener(
    ProcurementApprovalAudited,
    delivery="durable",
    listener_id="procurement.approvals.audit",
    retry=RetryPolicy(max_attempts=10, base_delay=1.0, max_delay=300.0),
)
async def when_approval_audited_write_record(event: ProcurementApprovalAudited) -> None:
    await inbox.record_approval(event)

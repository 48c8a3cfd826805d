"""Listeners of the leasing module: the user's identity, the task sync, the audit trail."""

from __future__ import annotations

import logging
import uuid

from app.contracts.leasing import LeasingApprovalAudited
from app.contracts.user import UserCreated, UserDeleted, UserTaskSyncRequested, UserUpdated
from app.core.inbox.engine import ApprovalRecord
from app.core.inbox.source import InboxUser, SourceNotConfigured, SourceUnavailable
from app.events import Retry, RetryAfter, RetryPolicy, current_envelope, listener
from app.modules.leasing.service import inbox

logger = logging.getLogger(__name__)


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
    listener_id="leasing.tasks.sync",
    retry=RetryPolicy(max_attempts=5, base_delay=5.0, max_delay=120.0),
)
async def when_task_sync_requested_sync_inbox(event: UserTaskSyncRequested) -> None:
    # The sync that found a task is this request: every module's received events carry its id.
    envelope = current_envelope()
    user = InboxUser(
        organization_id=event.organization_id,
        user_id=event.user_id,
        email=event.email,
        oracle_username=event.oracle_username,
        person_number=event.person_number,
    )
    try:
        await inbox.sync(user, sync_id=envelope.id if envelope else None, merge_identity=True)
    except SourceNotConfigured:
        logger.info("leasing sync of %s skipped: no Yardi connection", event.user_id)
    except SourceUnavailable as exc:
        if exc.retry_after:
            raise RetryAfter(exc.retry_after, str(exc)) from exc
        raise Retry(str(exc)) from exc


@listener(
    LeasingApprovalAudited,
    delivery="durable",
    listener_id="leasing.approvals.audit",
    retry=RetryPolicy(max_attempts=10, base_delay=1.0, max_delay=300.0),
)
async def when_approval_audited_write_record(event: LeasingApprovalAudited) -> None:
    envelope = current_envelope()
    fallback = envelope.id if envelope else uuid.uuid4()
    await inbox.record_approval(ApprovalRecord.of(event, fallback_id=fallback))

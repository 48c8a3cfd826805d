"""The leasing inbox: lease approvals waiting in Yardi.

The shared inbox (:mod:`app.core.inbox`) does the sync's diff, the reads, the idempotent
actions and the audit trail over this module's tables; this file says where the tasks come from
(Yardi's pending approvals of the user, whose details are the property, unit, applicant, rent
and lease dates) and which events the module publishes.
"""

from __future__ import annotations

import uuid

from app.contracts.leasing import LeasingApprovalAudited, LeasingTaskClosed, LeasingTaskReceived
from app.core.inbox.engine import ApprovalRecord, TaskInbox
from app.events import publish
from app.integrations.sources import YardiApprovals
from app.modules.leasing.models import LeasingTask
from app.modules.leasing.repository import TABLES


class LeasingEvents:
    """What the leasing inbox publishes."""

    async def received(self, task: LeasingTask, *, sync_id: uuid.UUID | None) -> None:
        await publish(
            LeasingTaskReceived(
                organization_id=task.organization_id,
                user_id=task.user_id,
                task_id=task.task_id,
                source="yardi",
                title=task.title,
                summary=task.summary,
                assigned_at=task.assigned_at,
                due_at=task.due_at,
                sync_id=sync_id,
            )
        )

    async def closed(self, task: LeasingTask, *, reason: str) -> None:
        await publish(
            LeasingTaskClosed(
                organization_id=task.organization_id,
                user_id=task.user_id,
                task_id=task.task_id,
                source="yardi",
                reason=reason,
            )
        )

    async def audited(self, record: ApprovalRecord) -> None:
        await publish(
            LeasingApprovalAudited(
                organization_id=record.organization_id,
                user_id=record.user_id,
                approval_id=record.id,
                task_id=record.task_id,
                source="yardi",
                action=record.action,
                comment=record.comment,
                outcome=record.outcome,
                error_code=record.error_code,
                title=record.title,
                acted_at=record.acted_at,
            )
        )


inbox = TaskInbox(module="leasing", source=YardiApprovals(), events=LeasingEvents(), tables=TABLES)

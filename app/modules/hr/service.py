"""The hr inbox: HR approvals (absences, promotions, time cards...) of the Oracle BPM worklist.

The shared inbox (:mod:`app.core.inbox`) does the sync's diff, the reads, the idempotent
actions and the audit trail over this module's tables; this file says where the tasks come from
(the worklist's ``hcm`` context), which details a task shows (its subject, requester and
transaction type) and which events the module publishes.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from app.contracts.hr import HrApprovalAudited, HrTaskClosed, HrTaskReceived
from app.core.inbox.engine import ApprovalRecord, TaskInbox
from app.events import publish
from app.integrations.oracle_fusion import OracleFusionClient
from app.integrations.oracle_fusion.models import TaskDetail
from app.integrations.sources import OracleWorklist
from app.modules.hr.models import HrTask
from app.modules.hr.repository import TABLES

APPLICATION_CONTEXT = "hcm"


async def transaction_details(_client: OracleFusionClient, task: TaskDetail) -> Mapping[str, Any]:
    """The HR transaction behind a task: its subject, who asked, and what kind it is."""
    return {
        "subject": task.title,
        "requester": task.from_user_display_name or task.created_by,
        "transaction_type": task.category,
        "task_definition": task.task_definition_name,
        "created_at": task.created_at.isoformat() if task.created_at else None,
    }


class HrEvents:
    """What the hr inbox publishes."""

    async def received(self, task: HrTask, *, sync_id: uuid.UUID | None) -> None:
        await publish(
            HrTaskReceived(
                organization_id=task.organization_id,
                user_id=task.user_id,
                task_id=task.task_id,
                source="oracle_fusion",
                title=task.title,
                summary=task.summary,
                assigned_at=task.assigned_at,
                due_at=task.due_at,
                sync_id=sync_id,
            )
        )

    async def closed(self, task: HrTask, *, reason: str) -> None:
        await publish(
            HrTaskClosed(
                organization_id=task.organization_id,
                user_id=task.user_id,
                task_id=task.task_id,
                source="oracle_fusion",
                reason=reason,
            )
        )

    async def audited(self, record: ApprovalRecord) -> None:
        await publish(
            HrApprovalAudited(
                organization_id=record.organization_id,
                user_id=record.user_id,
                approval_id=record.id,
                task_id=record.task_id,
                source="oracle_fusion",
                action=record.action,
                comment=record.comment,
                outcome=record.outcome,
                error_code=record.error_code,
                title=record.title,
                acted_at=record.acted_at,
            )
        )


inbox = TaskInbox(
    module="hr",
    source=OracleWorklist(application_context=APPLICATION_CONTEXT, details=transaction_details),
    events=HrEvents(),
    tables=TABLES,
)

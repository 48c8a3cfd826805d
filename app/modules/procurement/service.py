"""The procurement inbox: Purchasing approvals of the Oracle Fusion BPM worklist.

The shared inbox (:mod:`app.core.inbox`) does the sync's diff, the reads, the idempotent
actions and the audit trail over this module's tables; this file says where the tasks come from
(the worklist's ``fscm`` context, category Purchasing), which details a task shows (its
requisition) and which events the module publishes.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from app.contracts.procurement import (
    ProcurementApprovalAudited,
    ProcurementTaskClosed,
    ProcurementTaskReceived,
)
from app.core.inbox.engine import ApprovalRecord, TaskInbox
from app.events import publish
from app.integrations.errors import IntegrationError
from app.integrations.oracle_fusion import OracleFusionClient
from app.integrations.oracle_fusion.models import TaskDetail
from app.integrations.sources import OracleWorklist
from app.modules.procurement.models import ProcurementTask
from app.modules.procurement.repository import TABLES

APPLICATION_CONTEXT = "fscm"
CATEGORY = "Purchasing"


async def requisition_details(client: OracleFusionClient, task: TaskDetail) -> Mapping[str, Any]:
    """The requisition behind a Purchasing task: number, description, preparer, amount."""
    key = task.identification_key
    if not key or not key.isdigit():
        return {}
    try:
        requisition = await client.get_requisition(int(key))
    except IntegrationError:
        return {"requisition": None}
    return {
        "requisition_number": requisition.number,
        "description": requisition.description,
        "preparer": requisition.preparer,
        "business_unit": requisition.business_unit,
        "amount": str(requisition.amount) if requisition.amount is not None else None,
        "currency": requisition.currency,
        "lines": [
            {
                "description": line.description,
                "quantity": str(line.quantity) if line.quantity is not None else None,
                "price": str(line.price) if line.price is not None else None,
            }
            for line in requisition.lines
        ],
    }


class ProcurementEvents:
    """What the procurement inbox publishes."""

    async def received(self, task: ProcurementTask, *, sync_id: uuid.UUID | None) -> None:
        await publish(
            ProcurementTaskReceived(
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

    async def closed(self, task: ProcurementTask, *, reason: str) -> None:
        await publish(
            ProcurementTaskClosed(
                organization_id=task.organization_id,
                user_id=task.user_id,
                task_id=task.task_id,
                source="oracle_fusion",
                reason=reason,
            )
        )

    async def audited(self, record: ApprovalRecord) -> None:
        await publish(
            ProcurementApprovalAudited(
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
    module="procurement",
    source=OracleWorklist(
        application_context=APPLICATION_CONTEXT,
        categories=(CATEGORY,),
        details=requisition_details,
    ),
    events=ProcurementEvents(),
    tables=TABLES,
)

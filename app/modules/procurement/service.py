"""The procurement inbox: Purchasing approvals of the Oracle Fusion BPM worklist.

The shared inbox (:mod:`app.core.inbox`) does the sync's diff, the reads, the idempotent
actions and the audit trail over this module's tables; this file says where the tasks come from
(the worklist's ``fscm`` context, category Purchasing), which details a task shows (its
requisition) and which events the module publishes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.contracts.procurement import (
    ProcurementApprovalAudited,
    ProcurementTaskClosed,
    ProcurementTaskReceived,
)
from app.core.inbox.engine import TaskInbox
from app.core.inbox.publishing import ContractEvents
from app.events import publish
from app.integrations.errors import IntegrationError
from app.integrations.oracle_fusion import OracleFusionClient
from app.integrations.oracle_fusion.models import TaskDetail
from app.integrations.sources import OracleWorklist
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


inbox = TaskInbox(
    module="procurement",
    source=OracleWorklist(
        application_context=APPLICATION_CONTEXT,
        categories=(CATEGORY,),
        details=requisition_details,
    ),
    events=ContractEvents(
        source="oracle_fusion",
        received=ProcurementTaskReceived,
        closed=ProcurementTaskClosed,
        audited=ProcurementApprovalAudited,
        publish=publish,
    ),
    tables=TABLES,
)

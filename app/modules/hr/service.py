"""The hr inbox: HR approvals (absences, promotions, time cards...) of the Oracle BPM worklist.

The shared inbox (:mod:`app.core.inbox`) does the sync's diff, the reads, the idempotent
actions and the audit trail over this module's tables; this file says where the tasks come from
(the worklist's ``hcm`` context), which details a task shows (its subject, requester and
transaction type) and which events the module publishes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.contracts.hr import HrApprovalAudited, HrTaskClosed, HrTaskReceived
from app.core.inbox.engine import TaskInbox
from app.core.inbox.publishing import ContractEvents
from app.events import publish
from app.integrations.oracle_fusion import OracleFusionClient
from app.integrations.oracle_fusion.models import TaskDetail
from app.integrations.sources import OracleWorklist
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


inbox = TaskInbox(
    module="hr",
    source=OracleWorklist(application_context=APPLICATION_CONTEXT, details=transaction_details),
    events=ContractEvents(
        source="oracle_fusion",
        received=HrTaskReceived,
        closed=HrTaskClosed,
        audited=HrApprovalAudited,
        publish=publish,
    ),
    tables=TABLES,
)

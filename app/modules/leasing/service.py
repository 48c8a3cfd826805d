"""The leasing inbox: lease approvals waiting in Yardi.

The shared inbox (:mod:`app.core.inbox`) does the sync's diff, the reads, the idempotent
actions and the audit trail over this module's tables; this file says where the tasks come from
(Yardi's pending approvals of the user, whose details are the property, unit, applicant, rent
and lease dates) and which events the module publishes.
"""

from __future__ import annotations

from app.contracts.leasing import LeasingApprovalAudited, LeasingTaskClosed, LeasingTaskReceived
from app.core.inbox.engine import TaskInbox
from app.core.inbox.publishing import ContractEvents
from app.events import publish
from app.integrations.sources import YardiApprovals
from app.modules.leasing.repository import TABLES

inbox = TaskInbox(
    module="leasing",
    source=YardiApprovals(),
    events=ContractEvents(
        source="yardi",
        received=LeasingTaskReceived,
        closed=LeasingTaskClosed,
        audited=LeasingApprovalAudited,
        publish=publish,
    ),
    tables=TABLES,
)

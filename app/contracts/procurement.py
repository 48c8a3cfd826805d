"""Events published by the procurement module."""

from __future__ import annotations

from typing import ClassVar

from app.contracts.common import ApprovalAudited, PendingTaskClosed, PendingTaskReceived


class ProcurementApprovalAudited(ApprovalAudited):
    """A user approved or rejected a procurement task in Oracle Fusion."""

    name: ClassVar[str] = "audit.procurement.approval"


class ProcurementTaskReceived(PendingTaskReceived):
    """A new procurement approval task is waiting for the user."""

    name: ClassVar[str] = "procurement.task.received"


class ProcurementTaskClosed(PendingTaskClosed):
    """A procurement task left the user's inbox (acted on, decided elsewhere or gone)."""

    name: ClassVar[str] = "procurement.task.closed"

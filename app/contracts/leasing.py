"""Events published by the leasing module."""

from __future__ import annotations

from typing import ClassVar

from app.contracts.common import ApprovalAudited, PendingTaskClosed, PendingTaskReceived


class LeasingApprovalAudited(ApprovalAudited):
    """A user approved or rejected a leasing task in Yardi."""

    name: ClassVar[str] = "audit.leasing.approval"


class LeasingTaskReceived(PendingTaskReceived):
    """A new leasing approval task is waiting for the user."""

    name: ClassVar[str] = "leasing.task.received"


class LeasingTaskClosed(PendingTaskClosed):
    """A leasing task left the user's inbox (acted on, decided elsewhere or gone)."""

    name: ClassVar[str] = "leasing.task.closed"

"""Events published by the leasing module."""

from __future__ import annotations

from typing import ClassVar

from app.contracts.common import ApprovalAudited, PendingTaskReceived


class LeasingApprovalAudited(ApprovalAudited):
    """A user approved or rejected a leasing task in Yardi."""

    name: ClassVar[str] = "audit.leasing.approval"


class LeasingTaskReceived(PendingTaskReceived):
    """A new leasing approval task is waiting for the user."""

    name: ClassVar[str] = "leasing.task.received"

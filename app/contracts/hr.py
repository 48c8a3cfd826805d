"""Events published by the hr module."""

from __future__ import annotations

import uuid
from typing import ClassVar

from app.contracts.common import (
    ApprovalAudited,
    PendingTaskClosed,
    PendingTaskReceived,
    Snapshot,
)
from app.events import Event


class LineManager(Snapshot):
    """A line manager as Oracle Fusion HCM reports it."""

    person_number: str | None = None
    display_name: str | None = None
    email: str | None = None


class WorkerProfile(Snapshot):
    """A worker's profile as read from Oracle Fusion HCM."""

    person_number: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    display_name: str | None = None
    work_email: str | None = None
    job: str | None = None
    department: str | None = None
    business_unit: str | None = None


class WorkerProfileSynced(Event):
    """HCM answered a profile sync; the user module persists it."""

    name: ClassVar[str] = "hr.profile.synced"

    user_id: uuid.UUID
    first_time: bool = False
    profile: WorkerProfile
    line_managers: tuple[LineManager, ...] = ()


class HrApprovalAudited(ApprovalAudited):
    """A user approved or rejected an HR task in Oracle Fusion."""

    name: ClassVar[str] = "audit.hr.approval"


class HrTaskReceived(PendingTaskReceived):
    """A new HR approval task is waiting for the user."""

    name: ClassVar[str] = "hr.task.received"


class HrTaskClosed(PendingTaskClosed):
    """A HR task left the user's inbox (acted on, decided elsewhere or gone)."""

    name: ClassVar[str] = "hr.task.closed"

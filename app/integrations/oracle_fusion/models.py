"""What the Oracle Fusion client returns: small typed views of HCM, BPM and procurement rows."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict

CLOSED_STATES = frozenset(
    {"COMPLETED", "WITHDRAWN", "EXPIRED", "ERRORED", "STALE", "DELETED", "PURGED"}
)
"""BPM task states in which no approve or reject is possible any more."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class ManagerRef(_Model):
    """A row of an assignment's ``managers`` child: who, by assignment, and of which type."""

    manager_assignment_id: int | None = None
    manager_assignment_number: str | None = None
    manager_type: str | None = None


class LineManager(_Model):
    """A worker's line manager, resolved to a person."""

    person_number: str | None = None
    person_id: int | None = None
    display_name: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    work_email: str | None = None
    assignment_id: int | None = None
    manager_type: str = "LINE_MANAGER"


class Assignment(_Model):
    """A worker's (primary) assignment: job, department, business unit."""

    key: str | None = None
    """The opaque ``assignmentsUniqID``, read from the ``self`` link."""
    assignment_id: int | None = None
    assignment_number: str | None = None
    assignment_name: str | None = None
    status: str | None = None
    primary: bool = False
    job_id: int | None = None
    job_code: str | None = None
    department_id: int | None = None
    department_name: str | None = None
    business_unit_id: int | None = None
    business_unit_name: str | None = None
    location_code: str | None = None
    legal_employer_name: str | None = None
    managers: tuple[ManagerRef, ...] = ()


class Worker(_Model):
    """An HCM worker with names, work email, primary assignment and line managers."""

    key: str | None = None
    """The opaque ``workersUniqID``, read from the ``self`` link."""
    person_id: int | None = None
    person_number: str
    first_name: str | None = None
    last_name: str | None = None
    display_name: str | None = None
    work_email: str | None = None
    assignment: Assignment | None = None
    line_managers: tuple[LineManager, ...] = ()


class TaskAction(_Model):
    """One action a BPM task offers its assignee (``actionList``)."""

    id: str
    type: str | None = None
    title: str | None = None


class TaskSummary(_Model):
    """A BPM worklist task as the list returns it."""

    number: int
    task_id: str | None = None
    title: str | None = None
    state: str | None = None
    outcome: str | None = None
    priority: int | None = None
    category: str | None = None
    application_context: str | None = None
    identification_key: str | None = None
    task_definition_name: str | None = None
    created_by: str | None = None
    from_user: str | None = None
    from_user_display_name: str | None = None
    assignees: tuple[str, ...] = ()
    created_at: datetime | None = None
    assigned_at: datetime | None = None
    updated_at: datetime | None = None
    due_at: datetime | None = None
    """``dueDate``: when the task is due (None: no deadline)."""

    @property
    def is_decided(self) -> bool:
        """Whether the task is past the point of an approve or reject."""
        return bool(self.outcome) or (self.state or "").upper() in CLOSED_STATES


class TaskDetail(TaskSummary):
    """A BPM task with the actions its assignee may take."""

    actions: tuple[TaskAction, ...] = ()

    def offers(self, action: str) -> bool:
        """Whether ``actionList`` offers ``action`` (case-insensitive)."""
        wanted = action.upper()
        return any(a.id.upper() == wanted for a in self.actions)


class RequisitionLine(_Model):
    line_number: int | None = None
    description: str | None = None
    category: str | None = None
    quantity: Decimal | None = None
    uom: str | None = None
    price: Decimal | None = None
    currency: str | None = None


class Requisition(_Model):
    """A purchase requisition behind a Purchasing approval task."""

    key: str | None = None
    header_id: int
    number: str | None = None
    description: str | None = None
    preparer: str | None = None
    preparer_email: str | None = None
    business_unit: str | None = None
    status: str | None = None
    amount: Decimal | None = None
    """The sum of the lines' quantity times price."""
    currency: str | None = None
    """The lines' currency, when they share one."""
    lines: tuple[RequisitionLine, ...] = ()

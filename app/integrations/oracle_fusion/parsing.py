"""Reading Oracle Fusion's JSON: ADF collections in both framework-version shapes, BPM tasks.

Expanded children are bare arrays up to ``REST-Framework-Version`` 2 and collection objects
(``{"items": [...], "count": ..., "hasMore": ...}``) from 3 on; :func:`children` reads both. Item
keys are opaque hashes that only the ``self`` link carries. Unknown fields are ignored and any
field may be null.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import unquote, urlsplit

from app.integrations.oracle_fusion.models import (
    Assignment,
    LineManager,
    ManagerRef,
    Requisition,
    RequisitionLine,
    TaskAction,
    TaskDetail,
    TaskSummary,
    Worker,
)

Json = Mapping[str, Any]
LINE_MANAGER = "LINE_MANAGER"
WORK_EMAIL = "W1"


def children(item: Json, name: str) -> list[Json]:
    """Return an expanded child collection, whichever framework version shaped it."""
    value = item.get(name)
    if isinstance(value, Mapping):
        value = value.get("items")
    if not isinstance(value, list):
        return []
    return [v for v in value if isinstance(v, Mapping)]


def self_key(item: Json) -> str | None:
    """Return the item key from the ``self`` link's last path segment."""
    for link in item.get("links") or ():
        if isinstance(link, Mapping) and link.get("rel") == "self":
            href = link.get("href")
            if isinstance(href, str) and href:
                path = urlsplit(href).path.rstrip("/")
                return unquote(path.rsplit("/", 1)[-1]) or None
    return None


def text(value: Any) -> str | None:
    """Return ``value`` as a stripped string, or ``None`` for null and blanks."""
    if value is None:
        return None
    out = str(value).strip()
    return out or None


def integer(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def bpm_datetime(value: Any) -> datetime | None:
    """Parse BPM's ``YYYY-MM-DD HH:MM:SS`` (taken as UTC), or an ISO-8601 timestamp."""
    raw = text(value)
    if raw is None:
        return None
    try:  # BPM's form is ISO-8601 with a space (3.11 reads both, in C: a worklist has many)
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _flag(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.upper() in ("Y", "TRUE"))


def _primary(rows: list[Json], flag: str) -> Json | None:
    for row in rows:
        if _flag(row.get(flag)):
            return row
    return rows[0] if rows else None


def _names(item: Json) -> tuple[str | None, str | None, str | None]:
    row = _primary(children(item, "names"), "PrimaryFlag") or {}
    first, last = text(row.get("FirstName")), text(row.get("LastName"))
    display = (
        text(row.get("DisplayName"))
        or text(row.get("LocalDisplayName"))
        or text(row.get("FullName"))
        or text(item.get("DisplayName"))
        or (" ".join(p for p in (first, last) if p) or None)
    )
    return first, last, display


def work_email(item: Json) -> str | None:
    """Return the ``W1`` (work) email, preferring the primary one."""
    emails = [e for e in children(item, "emails") if text(e.get("EmailType")) == WORK_EMAIL]
    row = _primary(emails, "PrimaryFlag")
    return text(row.get("EmailAddress")) if row else text(item.get("WorkEmail"))


def _assignment(row: Json, relationship: Json) -> Assignment:
    managers = tuple(
        ManagerRef(
            manager_assignment_id=integer(m.get("ManagerAssignmentId")),
            manager_assignment_number=text(m.get("ManagerAssignmentNumber")),
            manager_type=text(m.get("ManagerType")),
        )
        for m in children(row, "managers")
    )
    return Assignment(
        key=self_key(row),
        assignment_id=integer(row.get("AssignmentId")),
        assignment_number=text(row.get("AssignmentNumber")),
        assignment_name=text(row.get("AssignmentName")),
        status=text(row.get("AssignmentStatusType")),
        primary=_flag(row.get("PrimaryAssignmentFlag")),
        job_id=integer(row.get("JobId")),
        job_code=text(row.get("JobCode")),
        department_id=integer(row.get("DepartmentId")),
        department_name=text(row.get("DepartmentName")),
        business_unit_id=integer(row.get("BusinessUnitId")),
        business_unit_name=text(row.get("BusinessUnitName")),
        location_code=text(row.get("LocationCode")),
        legal_employer_name=text(relationship.get("LegalEmployerName")),
        managers=managers,
    )


def primary_assignment(item: Json) -> Assignment | None:
    """Return the worker's primary assignment in its primary work relationship."""
    relationships = children(item, "workRelationships")
    relationship = _primary(relationships, "PrimaryFlag")
    if relationship is None:
        return None
    rows = children(relationship, "assignments")
    active = [r for r in rows if (text(r.get("AssignmentStatusType")) or "ACTIVE") == "ACTIVE"]
    row = _primary(active or rows, "PrimaryAssignmentFlag")
    return _assignment(row, relationship) if row is not None else None


def worker(item: Json, line_managers: tuple[LineManager, ...] = ()) -> Worker:
    """Return a worker from a ``workers`` item (any framework version)."""
    first, last, display = _names(item)
    return Worker(
        key=self_key(item),
        person_id=integer(item.get("PersonId")),
        person_number=text(item.get("PersonNumber")) or "",
        first_name=first,
        last_name=last,
        display_name=display,
        work_email=work_email(item),
        assignment=primary_assignment(item),
        line_managers=line_managers,
    )


def line_manager(ref: ManagerRef, item: Json | None) -> LineManager:
    """Return a line manager from its reference and, when found, the manager's worker item."""
    if item is None:
        return LineManager(assignment_id=ref.manager_assignment_id)
    first, last, display = _names(item)
    return LineManager(
        person_number=text(item.get("PersonNumber")),
        person_id=integer(item.get("PersonId")),
        display_name=display,
        first_name=first,
        last_name=last,
        work_email=work_email(item),
        assignment_id=ref.manager_assignment_id,
        manager_type=ref.manager_type or LINE_MANAGER,
    )


def _assignees(raw: Json) -> tuple[str, ...]:
    ids = (text(a.get("id")) for a in children(raw, "assignees"))
    return tuple(i for i in ids if i)


def _task_fields(raw: Json) -> dict[str, Any]:
    return {
        "number": integer(raw.get("number")),
        "task_id": text(raw.get("taskId")),
        "title": text(raw.get("title")),
        "state": text(raw.get("state")),
        "outcome": text(raw.get("outcome")),
        "priority": integer(raw.get("priority")),
        "category": text(raw.get("category")),
        "application_context": text(raw.get("applicationContext")),
        "identification_key": text(raw.get("identificationKey")),
        "task_definition_name": text(raw.get("taskDefinitionName")),
        "created_by": text(raw.get("createdBy")),
        "from_user": text(raw.get("fromUserName")),
        "from_user_display_name": text(raw.get("fromUserDisplayName")),
        "assignees": _assignees(raw),
        "created_at": bpm_datetime(raw.get("createdDate")),
        "assigned_at": bpm_datetime(raw.get("assignedDate")),
        "updated_at": bpm_datetime(raw.get("updatedDate")),
        "due_at": bpm_datetime(raw.get("dueDate")),
    }


def task_summary(raw: Json) -> TaskSummary:
    """Return a worklist task from a list item."""
    return TaskSummary.model_validate(_task_fields(raw))


def task_detail(raw: Json) -> TaskDetail:
    """Return a task with its ``actionList`` from a detail (or an action's echo)."""
    actions = []
    for row in children(raw, "actionList"):
        action_id = text(row.get("actionId")) or text(row.get("id"))
        if action_id:
            actions.append(
                TaskAction(
                    id=action_id, type=text(row.get("actionType")), title=text(row.get("title"))
                )
            )
    return TaskDetail.model_validate({**_task_fields(raw), "actions": tuple(actions)})


def requisition(item: Json) -> Requisition:
    """Return a purchase requisition with its lines, amount and currency."""
    lines = tuple(
        RequisitionLine(
            line_number=integer(row.get("LineNumber")),
            description=text(row.get("ItemDescription")),
            category=text(row.get("CategoryName")),
            quantity=decimal(row.get("Quantity")),
            uom=text(row.get("UOM")),
            price=decimal(row.get("Price")),
            currency=text(row.get("CurrencyCode")),
        )
        for row in children(item, "lines")
    )
    amount: Decimal | None = None
    for line in lines:
        if line.quantity is not None and line.price is not None:
            amount = (amount or Decimal(0)) + line.quantity * line.price
    currencies = {line.currency for line in lines if line.currency}
    return Requisition(
        key=self_key(item),
        header_id=integer(item.get("RequisitionHeaderId")) or 0,
        number=text(item.get("Requisition")),
        description=text(item.get("Description")),
        preparer=text(item.get("Preparer")),
        preparer_email=text(item.get("PreparerEmail")),
        business_unit=text(item.get("RequisitioningBU")),
        status=text(item.get("DocumentStatus")),
        amount=amount.quantize(Decimal("0.01")) if amount is not None else None,
        currency=currencies.pop() if len(currencies) == 1 else None,
        lines=lines,
    )

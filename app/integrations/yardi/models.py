"""Yardi credentials and what the leasing-approval contract returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from pydantic import BaseModel, ConfigDict


@dataclass(frozen=True)
class YardiCredentials:
    """The interface credentials Yardi wants in every SOAP body (secrets never in ``repr``)."""

    username: str
    password: str = field(repr=False)
    server_name: str
    database: str
    interface_entity: str
    interface_license: str = field(repr=False)
    platform: str = "SQL Server"
    property_id: str | None = None


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class LeasingApproval(_Model):
    """A pending leasing approval; ``(workflow_name, record_id)`` identifies it."""

    type: str | None = None
    workflow_name: str
    record_id: str
    record_code: str | None = None
    property_code: str | None = None
    property_name: str | None = None
    unit: str | None = None
    tenant: str | None = None
    """The applicant: who the lease is for."""
    description: str | None = None
    requested_by: str | None = None
    requested_on: date | None = None
    due_on: date | None = None
    """``DueDate``: the day the approval is due (None: no deadline)."""
    amount: Decimal | None = None
    """The monthly rent."""
    currency: str | None = None
    status: str | None = None


class Attachment(_Model):
    id: str
    name: str | None = None


class LeasingApprovalDetail(LeasingApproval):
    """A leasing approval with the actions it offers and its attachments."""

    actions: tuple[str, ...] = ()
    attachments: tuple[Attachment, ...] = ()
    lease_start: date | None = None
    lease_end: date | None = None

    def offers(self, action: str) -> bool:
        """Whether the approval offers ``action`` (case-insensitive)."""
        return action.casefold() in {a.casefold() for a in self.actions}


class ApprovalActionResult(_Model):
    record_id: str
    status: str | None = None
    message: str | None = None

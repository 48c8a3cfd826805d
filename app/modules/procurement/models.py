"""Tables of the procurement module: the inboxes, their tasks, the audit trail, idempotency."""

from __future__ import annotations

from app.core.db import Base
from app.core.inbox.models import (
    ApprovalColumns,
    IdempotencyColumns,
    InboxTaskColumns,
    InboxUserColumns,
)


class ProcurementInbox(InboxUserColumns, Base):
    """A user's procurement inbox: their Oracle identity and when it was last synced."""

    __tablename__ = "procurement_inboxes"


class ProcurementTask(InboxTaskColumns, Base):
    """A Purchasing approval of the BPM worklist in a user's inbox."""

    __tablename__ = "procurement_tasks"


class ProcurementApproval(ApprovalColumns, Base):
    """One approve or reject attempt on a procurement task (the audit trail)."""

    __tablename__ = "procurement_approvals"


class ProcurementIdempotencyKey(IdempotencyColumns, Base):
    """The first answer to a user's ``Idempotency-Key`` on a procurement action."""

    __tablename__ = "procurement_idempotency_keys"

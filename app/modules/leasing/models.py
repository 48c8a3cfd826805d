"""Tables of the leasing module: the inboxes, their tasks, the audit trail, idempotency."""

from __future__ import annotations

from app.core.db import Base
from app.core.inbox.models import (
    ApprovalColumns,
    IdempotencyColumns,
    InboxTaskColumns,
    InboxUserColumns,
)


class LeasingInbox(InboxUserColumns, Base):
    """A user's leasing inbox: their Yardi identity and when it was last synced."""

    __tablename__ = "leasing_inboxes"


class LeasingTask(InboxTaskColumns, Base):
    """A leasing approval of Yardi in a user's inbox."""

    __tablename__ = "leasing_tasks"


class LeasingApproval(ApprovalColumns, Base):
    """One approve or reject attempt on a leasing task (the audit trail)."""

    __tablename__ = "leasing_approvals"


class LeasingIdempotencyKey(IdempotencyColumns, Base):
    """The first answer to a user's ``Idempotency-Key`` on a leasing action."""

    __tablename__ = "leasing_idempotency_keys"

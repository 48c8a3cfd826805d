"""Tables of the hr module: the inboxes, their tasks, the audit trail, idempotency."""

from __future__ import annotations

from app.core.db import Base
from app.core.inbox.models import (
    ApprovalColumns,
    IdempotencyColumns,
    InboxTaskColumns,
    InboxUserColumns,
)


class HrInbox(InboxUserColumns, Base):
    """A user's HR inbox: their Oracle identity and when it was last synced."""

    __tablename__ = "hr_inboxes"


class HrTask(InboxTaskColumns, Base):
    """An HR approval of the BPM worklist in a user's inbox."""

    __tablename__ = "hr_tasks"


class HrApproval(ApprovalColumns, Base):
    """One approve or reject attempt on an HR task (the audit trail)."""

    __tablename__ = "hr_approvals"


class HrIdempotencyKey(IdempotencyColumns, Base):
    """The first answer to a user's ``Idempotency-Key`` on an HR action."""

    __tablename__ = "hr_idempotency_keys"

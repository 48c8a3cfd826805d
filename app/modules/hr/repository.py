"""Queries of the hr module: the shared inbox queries over this module's tables."""

from __future__ import annotations

from app.core.inbox.store import InboxTables
from app.modules.hr.models import (
    HrApproval,
    HrIdempotencyKey,
    HrInbox,
    HrTask,
)

TABLES = InboxTables(
    user=HrInbox,
    task=HrTask,
    approval=HrApproval,
    idempotency=HrIdempotencyKey,
)

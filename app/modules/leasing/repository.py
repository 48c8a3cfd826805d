"""Queries of the leasing module: the shared inbox queries over this module's tables."""

from __future__ import annotations

from app.core.inbox.store import InboxTables
from app.modules.leasing.models import (
    LeasingApproval,
    LeasingIdempotencyKey,
    LeasingInbox,
    LeasingTask,
)

TABLES = InboxTables(
    user=LeasingInbox,
    task=LeasingTask,
    approval=LeasingApproval,
    idempotency=LeasingIdempotencyKey,
)

"""Queries of the procurement module: the shared inbox queries over this module's tables."""

from __future__ import annotations

from app.core.inbox.store import InboxTables
from app.modules.procurement.models import (
    ProcurementApproval,
    ProcurementIdempotencyKey,
    ProcurementInbox,
    ProcurementTask,
)

TABLES = InboxTables(
    user=ProcurementInbox,
    task=ProcurementTask,
    approval=ProcurementApproval,
    idempotency=ProcurementIdempotencyKey,
)

"""One inbox over one source: sync, the local read, the live detail, idempotent actions, audit.

:class:`TaskInbox` is assembled from one part per responsibility: :mod:`.base` (state, identity,
shared records), :mod:`.sync`, :mod:`.read`, :mod:`.act` and :mod:`.bulk`. Transactions are short
and explicit: no transaction is open while a source is called.
"""

from __future__ import annotations

from app.core.inbox.base import (
    Answer,
    ApprovalRecord,
    InboxEvents,
    KeyClaim,
    SyncResult,
    _hash,
    writing,
)
from app.core.inbox.bulk import BulkInbox

__all__ = [
    "Answer",
    "ApprovalRecord",
    "InboxEvents",
    "KeyClaim",
    "SyncResult",
    "TaskInbox",
    "_hash",
    "writing",
]


class TaskInbox(BulkInbox):
    """The inbox of one module over its source."""

"""What every inbox module publishes, built in one place from the module's contract classes.

The three modules' contracts share their shapes (``app/contracts/common.py``): a task received,
a task closed, an approval audited. :class:`ContractEvents` builds each from the inbox's row or
record and publishes it; a module names its three classes, its source and the emitter's
``publish`` (the core does not import the emitter or the contracts).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any

from app.core.inbox.engine import ApprovalRecord

Publish = Callable[[Any], Awaitable[Any]]


class ContractEvents:
    """The :class:`~app.core.inbox.engine.InboxEvents` of one module over its contracts."""

    def __init__(
        self,
        *,
        source: str,
        received: Callable[..., Any],
        closed: Callable[..., Any],
        audited: Callable[..., Any],
        publish: Publish,
    ) -> None:
        self.source = source
        self._received = received
        self._closed = closed
        self._audited = audited
        self._publish = publish

    async def received(self, task: Any, *, sync_id: uuid.UUID | None) -> None:
        await self._publish(
            self._received(
                organization_id=task.organization_id,
                user_id=task.user_id,
                task_id=task.task_id,
                source=self.source,
                title=task.title,
                summary=task.summary,
                assigned_at=task.assigned_at,
                due_at=task.due_at,
                sync_id=sync_id,
            )
        )

    async def closed(self, task: Any, *, reason: str) -> None:
        await self._publish(
            self._closed(
                organization_id=task.organization_id,
                user_id=task.user_id,
                task_id=task.task_id,
                source=self.source,
                reason=reason,
            )
        )

    async def audited(self, record: ApprovalRecord) -> None:
        fields = asdict(record)
        await self._publish(
            self._audited(approval_id=fields.pop("id"), source=self.source, **fields)
        )

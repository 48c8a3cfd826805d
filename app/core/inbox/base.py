"""What every part of an inbox shares: its state, the user's identity, the row's answer shape,
the records and answers it passes around, the short transactions, and the error mapping.

:class:`~app.core.inbox.engine.TaskInbox` is assembled from the parts, one per responsibility:
:mod:`.sync` (the source's listing diffed into the inbox), :mod:`.read` (the local list, the
live detail, the audit trail), :mod:`.act` (the idempotent action and its audit) and
:mod:`.bulk` (many actions at once).
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from pydantic import TypeAdapter

from app.core.db import own_transaction, read_session, session_scope
from app.core.errors import AppError
from app.core.inbox import store
from app.core.inbox.errors import (
    ActionNotAllowed,
    IntegrationNotConfigured,
    TaskAlreadyDecided,
    TaskNotFound,
    UpstreamFailed,
    UpstreamUnavailable,
)
from app.core.inbox.schemas import (
    BulkItemIn,
    BulkResult,
    TaskRead,
)
from app.core.inbox.settings import InboxSettings, get_inbox_settings
from app.core.inbox.source import (
    InboxUser,
    SourceActionRefused,
    SourceError,
    SourceNotConfigured,
    SourceTaskGone,
    SourceUnavailable,
    TaskSource,
)
from app.core.inbox.store import InboxTables
from app.core.security import Principal

logger = logging.getLogger(__name__)

DECIDED = {"APPROVE": "approved", "REJECT": "rejected"}
NO_LONGER_PENDING = "no_longer_pending"
DECIDED_ELSEWHERE = "decided_elsewhere"
TASK_LIST: TypeAdapter[list[TaskRead]] = TypeAdapter(list[TaskRead])
REPLAYABLE_BELOW = 500
"""Answers below this status are final and replayed for a repeated Idempotency-Key; a 5xx
is not (the repeat tries again)."""


@dataclass(frozen=True, slots=True)
class ApprovalRecord:
    """What the audit event carries and the audit listener stores."""

    id: uuid.UUID
    organization_id: uuid.UUID
    user_id: uuid.UUID
    task_id: str
    action: str
    comment: str | None
    outcome: str
    error_code: str | None
    title: str | None
    acted_at: datetime

    @classmethod
    def of(cls, event: Any) -> ApprovalRecord:
        """The record an ``audit.<m>.approval`` event describes.

        Its id is the one the action answered with. An event without one (published before
        events carried it) gets an id derived from what it records, so every delivery and
        replay of it writes the same record, once.
        """
        return cls(
            id=event.approval_id or _derived_approval_id(event),
            organization_id=event.organization_id,
            user_id=event.user_id,
            task_id=event.task_id,
            action=event.action,
            comment=event.comment,
            outcome=event.outcome,
            error_code=event.error_code,
            title=event.title,
            acted_at=event.acted_at,
        )


_APPROVALS = uuid.UUID("5d0c6c52-6f0b-4c4e-9a51-2f4a8f3c1b7e")
"""The namespace of the approval ids derived from an audit event's fields."""


def _derived_approval_id(event: Any) -> uuid.UUID:
    what = (event.organization_id, event.user_id, event.task_id, event.action, event.outcome)
    return uuid.uuid5(_APPROVALS, json.dumps([*map(str, what), event.acted_at.isoformat()]))


class InboxEvents(Protocol):
    """How the module publishes what the inbox did (its typed events)."""

    async def received(self, task: Any, *, sync_id: uuid.UUID | None) -> None: ...

    async def closed(self, task: Any, *, reason: str) -> None: ...

    async def audited(self, record: ApprovalRecord) -> None: ...


@dataclass(frozen=True, slots=True)
class SyncResult:
    received: int = 0
    updated: int = 0
    closed: int = 0
    confirmed: int = 0
    skipped: bool = False


@dataclass(frozen=True, slots=True)
class Answer:
    """An action's answer: the status and JSON body, replayed for a repeated key."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class KeyClaim:
    """A key this request now holds; ``previous`` is a bulk answer it resumes (see ``RETRY``)."""

    id: uuid.UUID
    previous: dict[str, Any] | None = None


RETRY = "__retry__"
"""In a stored bulk answer: the items whose failure was not final (5xx), which a repeat of the
key runs again; the others are replayed."""


@asynccontextmanager
async def writing(*, join: bool = False) -> AsyncIterator[Any]:
    """A short transaction that commits on its own, or with ``join`` the caller's."""
    if join:
        async with session_scope() as session:
            yield session
    else:
        async with own_transaction() as session:
            yield session


class InboxBase:
    """The inbox of one module over its source: its state and what every part uses."""

    def __init__(
        self,
        *,
        module: str,
        source: TaskSource,
        events: InboxEvents,
        tables: InboxTables,
        settings: InboxSettings | None = None,
    ) -> None:
        self.module = module
        self.source = source
        self.events = events
        self.tables = tables
        self._settings = settings

    @property
    def settings(self) -> InboxSettings:
        return self._settings or get_inbox_settings()

    async def remember_user(self, user: InboxUser) -> None:
        """Store who the user is at the source (joins the caller's transaction)."""
        async with writing(join=True) as session:
            await store.remember_user(session, self.tables, user)

    async def forget_user(self, organization_id: uuid.UUID, user_id: uuid.UUID) -> None:
        """Mark a deleted user inactive: their inbox is no longer synced."""
        async with writing(join=True) as session:
            row = await store.get_user(session, self.tables, organization_id, user_id)
            if row is not None:
                row.is_active = False

    async def _user(self, principal: Principal) -> InboxUser:
        async with read_session() as session:
            row = await store.get_user(
                session, self.tables, principal.organization_id, principal.user_id
            )
        if row is None:
            return InboxUser(principal.organization_id, principal.user_id, user_type=None)
        return store.inbox_user(row)

    def _can_sync(self, user: InboxUser) -> bool:
        if not user.is_active or user.user_type not in (None, "EMPLOYEE"):
            return False
        return self.source.identity(user) is not None

    async def _own_task(self, session: Any, principal: Principal, row_id: uuid.UUID) -> Any:
        row = await store.get_task(
            session, self.tables, principal.organization_id, principal.user_id, row_id
        )
        if row is None:
            raise TaskNotFound()
        return row

    def _out(self, row: Any) -> TaskRead:
        return TaskRead(
            id=row.id,
            task_id=row.task_id,
            source=self.source.name,
            title=row.title,
            summary=row.summary,
            status=row.status,
            close_reason=row.close_reason,
            priority=row.priority,
            assigned_at=row.assigned_at,
            due_at=row.due_at,
            synced_at=row.synced_at,
            closed_at=row.closed_at,
        )


def _hash(row_id: uuid.UUID, action: str, comment: str | None) -> str:
    canonical = json.dumps([str(row_id), action, comment], separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _bulk_hash(items: Sequence[BulkItemIn]) -> str:
    canonical = [["bulk"], *([str(i.id), i.action, i.comment] for i in items)]
    return hashlib.sha256(json.dumps(canonical, separators=(",", ":")).encode()).hexdigest()


def _app_error(exc: SourceError) -> AppError:
    """The client's answer for a source failure."""
    if isinstance(exc, SourceTaskGone):
        return TaskAlreadyDecided()
    if isinstance(exc, SourceActionRefused):
        return ActionNotAllowed()
    if isinstance(exc, SourceUnavailable):
        return UpstreamUnavailable(retry_after=exc.retry_after, breaker_open=exc.breaker_open)
    if isinstance(exc, SourceNotConfigured):
        return IntegrationNotConfigured()
    return UpstreamFailed(code=exc.code)


def _problem_body(error: AppError) -> dict[str, Any]:
    return {"status": error.status, "code": error.code, "detail": error.detail, **error.extra}


def _failed(row_id: uuid.UUID, error: AppError) -> BulkResult:
    retry_after = error.extra.get("retry_after")
    return BulkResult(
        id=row_id,
        outcome="failed",
        code=error.code,
        retry_after=int(retry_after) if retry_after is not None else None,
    )

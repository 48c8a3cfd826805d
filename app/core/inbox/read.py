"""An inbox's reads: the local list (synced first when asked), the live detail, the audit trail."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import read_session, utcnow
from app.core.inbox import store
from app.core.inbox.base import (
    NO_LONGER_PENDING,
    TASK_LIST,
    _app_error,
    logger,
    writing,
)
from app.core.inbox.errors import (
    ApprovalsForbidden,
    InvalidTimeRange,
)
from app.core.inbox.models import PENDING
from app.core.inbox.schemas import (
    ApprovalPage,
    ApprovalRead,
    RefreshOutcome,
    TaskDetailRead,
    TaskPage,
)
from app.core.inbox.source import (
    LiveTask,
    SourceError,
    SourceTaskGone,
    TaskRef,
)
from app.core.inbox.sync import SyncConflict, SyncingInbox
from app.core.security import Principal


class ReadingInbox(SyncingInbox):
    """The reads (a list's ``refresh`` runs the sync)."""

    async def list_tasks(
        self,
        principal: Principal,
        *,
        session: AsyncSession,
        pending_only: bool,
        limit: int,
        offset: int,
        refresh: bool = False,
    ) -> TaskPage:
        """Return a page of the caller's local inbox, newest first, after a sync if asked.

        ``session`` is the route's read session (``ReadSession``, which checked the caller):
        the page is read on its connection, one checkout for the whole request. A refresh
        gives that connection back first, so none is held while the source answers.
        """
        outcome = None
        if refresh:
            await session.close()
            outcome = await self._refresh(principal)
        found = await store.task_page(
            await session.connection(),
            self.tables,
            principal.organization_id,
            principal.user_id,
            source=self.source.name,
            pending_only=pending_only,
            limit=limit,
            offset=offset,
        )
        # The rows are the database's own, typed values: one validation of the whole list by
        # pydantic's core instead of a model built per row in Python.
        return TaskPage.model_construct(
            items=TASK_LIST.validate_python(found.rows),
            total=found.total,
            limit=limit,
            offset=offset,
            synced_at=found.synced_at,
            refresh=outcome,
        )

    async def _refresh(self, principal: Principal) -> RefreshOutcome:
        user = await self._user(principal)
        if not self._can_sync(user) or user.user_type is None:
            return "skipped"
        try:
            async with asyncio.timeout(self.settings.refresh_timeout_seconds):
                await self.sync(user, sync_id=uuid.uuid4(), join=False)
        except TimeoutError:
            logger.warning("%s refresh of %s timed out", self.module, principal.user_id)
            return "timed_out"
        except (SourceError, SyncConflict) as exc:
            logger.warning("%s refresh of %s failed: %s", self.module, principal.user_id, exc)
            return "failed"
        return "synced"

    async def get_task(self, principal: Principal, row_id: uuid.UUID) -> TaskDetailRead:
        """Return the caller's task with the actions and details its source gives now."""
        async with read_session() as session:
            row = await self._own_task(session, principal, row_id)
            ref = TaskRef(row.task_id, row.source_ref)
        user = await self._user(principal)
        if row.status != PENDING:
            return TaskDetailRead(**self._out(row).model_dump(), actions=[], details={})
        try:
            live = await self.source.read(user, ref)
        except SourceTaskGone:
            live = LiveTask(pending=False)
        except SourceError as exc:
            raise _app_error(exc) from exc
        if not live.pending:
            row = await self._close_gone(principal, row_id)
            return TaskDetailRead(**self._out(row).model_dump(), actions=[], details={})
        return TaskDetailRead(
            **self._out(row).model_dump(), actions=list(live.actions), details=dict(live.details)
        )

    async def _close_gone(self, principal: Principal, row_id: uuid.UUID) -> Any:
        async with writing() as session:
            row = await self._own_task(session, principal, row_id)
            if row.status == PENDING:
                row.status, row.close_reason, row.closed_at = "closed", NO_LONGER_PENDING, utcnow()
                await session.flush()
                await self.events.closed(row, reason=NO_LONGER_PENDING)
            return row

    async def approvals(
        self,
        principal: Principal,
        *,
        user_id: uuid.UUID | None,
        since: datetime | None,
        until: datetime | None,
        limit: int,
        offset: int,
    ) -> ApprovalPage:
        """Return the audit trail: the caller's own, or an admin's organisation's."""
        if since is not None and until is not None and since > until:
            raise InvalidTimeRange()
        if not principal.is_admin:
            if user_id is not None and user_id != principal.user_id:
                raise ApprovalsForbidden()
            user_id = principal.user_id
        async with read_session() as session:
            rows, total = await store.approval_page(
                session,
                self.tables,
                principal.organization_id,
                user=user_id,
                since=since,
                until=until,
                limit=limit,
                offset=offset,
            )
            items = [
                ApprovalRead(
                    id=r.id,
                    user_id=r.user_id,
                    task_id=r.task_id,
                    source=self.source.name,
                    action=r.action,
                    comment=r.comment,
                    outcome=r.outcome,
                    error_code=r.error_code,
                    title=r.title,
                    acted_at=r.acted_at,
                )
                for r in rows
            ]
        return ApprovalPage(items=items, total=total, limit=limit, offset=offset)

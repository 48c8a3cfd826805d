"""The integrations as task sources of the inboxes (:class:`app.core.inbox.source.TaskSource`).

:class:`OracleWorklist` lists and acts on BPM worklist tasks of one category as the acting user
(JWT mode), or, where the organisation's connection is basic auth, as the integration account
over ``assignment=ALL`` filtered to the user. :class:`YardiApprovals` does the same for Yardi's
leasing approvals. Each maps its client's typed errors onto the inbox's source errors; a module
adds its own details to a live task with a ``details`` function.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, time
from typing import Any

import httpx

from app.core.inbox.source import (
    InboxUser,
    LiveTask,
    SourceActionRefused,
    SourceError,
    SourceNotConfigured,
    SourceTask,
    SourceTaskGone,
    SourceUnavailable,
    TaskRef,
)
from app.integrations.connections.service import IntegrationDisabled, IntegrationNotConfigured
from app.integrations.errors import (
    ActionNotAllowedError,
    ConflictError,
    IntegrationError,
    NotFoundError,
    RateLimitedError,
    UnavailableError,
)
from app.integrations.oracle_fusion import OracleFusionClient
from app.integrations.oracle_fusion.models import TaskDetail, TaskSummary
from app.integrations.runtime import get_integrations
from app.integrations.transport.wire import CircuitOpenError
from app.integrations.yardi import YardiClient
from app.integrations.yardi.models import LeasingApproval, LeasingApprovalDetail

SUPPORTED_ACTIONS = ("APPROVE", "REJECT")
"""The actions the inboxes take; a source's other actions (DELEGATE...) are not offered."""

OracleDetails = Callable[[OracleFusionClient, TaskDetail], Awaitable[Mapping[str, Any]]]


def source_error(exc: IntegrationError) -> SourceError:
    """The inbox's view of an integration failure."""
    if isinstance(exc, ActionNotAllowedError):
        return SourceActionRefused(exc.detail)
    if isinstance(exc, ConflictError | NotFoundError):
        return SourceTaskGone(exc.detail)
    if isinstance(exc, RateLimitedError | UnavailableError):
        return SourceUnavailable(
            exc.detail,
            retry_after=exc.retry_after,
            breaker_open=isinstance(exc.__cause__, CircuitOpenError),
        )
    error = SourceError(exc.detail)
    error.code = f"upstream_{exc.kind}"
    return error


@asynccontextmanager
async def _translated() -> Any:
    try:
        yield
    except IntegrationError as exc:
        raise source_error(exc) from exc
    except (IntegrationNotConfigured, IntegrationDisabled) as exc:
        raise SourceNotConfigured(exc.detail) from exc


class OracleWorklist:
    """BPM worklist tasks of one application context and category."""

    name = "oracle_fusion"

    def __init__(
        self,
        *,
        application_context: str | None,
        categories: Sequence[str] = (),
        details: OracleDetails | None = None,
        source_ref: Callable[[TaskSummary], str | None] = lambda task: task.identification_key,
    ) -> None:
        self.application_context = application_context
        self.categories = frozenset(c.casefold() for c in categories)
        self.details = details
        self.source_ref = source_ref

    def identity(self, user: InboxUser) -> str | None:
        return user.oracle_username

    async def _client(self, user: InboxUser) -> tuple[OracleFusionClient, bool]:
        """The client acting as the user, and whether it really does (False: basic auth)."""
        client = await get_integrations().oracle_fusion(
            None, organization_id=user.organization_id, acting_user=self.identity(user)
        )
        return client, not isinstance(client.auth, httpx.BasicAuth)

    async def pending(self, user: InboxUser) -> Sequence[SourceTask]:
        async with _translated():
            client, as_user = await self._client(user)
            if as_user:
                tasks = await client.list_tasks(application_context=self.application_context)
            else:
                tasks = await client.list_tasks(
                    assignment="ALL",
                    application_context=self.application_context,
                    assignee=self.identity(user),
                )
        return [self._task(t) for t in tasks if self._wanted(t)]

    def _wanted(self, task: TaskSummary) -> bool:
        return not self.categories or (task.category or "").casefold() in self.categories

    def _task(self, task: TaskSummary) -> SourceTask:
        who = task.from_user_display_name or task.created_by
        return SourceTask(
            task_id=str(task.number),
            source_ref=self.source_ref(task),
            title=(task.title or f"Task {task.number}")[:500],
            summary=f"From {who}" if who else None,
            priority=task.priority,
            assigned_at=task.assigned_at or task.created_at,
            due_at=task.due_at,
            updated_at=task.updated_at,
        )

    async def read(self, user: InboxUser, task: TaskRef, *, details: bool = True) -> LiveTask:
        async with _translated():
            client, _ = await self._client(user)
            detail = await client.get_task(int(task.task_id))
            extra: Mapping[str, Any] = {}
            if details and self.details is not None and not detail.is_decided:
                extra = await self.details(client, detail)
        offered = {a.id.upper() for a in detail.actions}
        return LiveTask(
            pending=not detail.is_decided,
            actions=tuple(a for a in SUPPORTED_ACTIONS if a in offered),
            details=extra,
            handle=detail,
        )

    async def act(
        self, user: InboxUser, task: TaskRef, live: LiveTask, *, action: str, comment: str | None
    ) -> None:
        async with _translated():
            client, _ = await self._client(user)
            await client.act_on_task(
                int(task.task_id), action=action, comment=comment, task=live.handle
            )


class YardiApprovals:
    """Yardi's leasing approvals of one approver (the user's Oracle username, else email)."""

    name = "yardi"

    def identity(self, user: InboxUser) -> str | None:
        return user.oracle_username or user.email

    async def _client(self, user: InboxUser) -> YardiClient:
        return await get_integrations().yardi(None, organization_id=user.organization_id)

    async def pending(self, user: InboxUser) -> Sequence[SourceTask]:
        approver = self.identity(user)
        assert approver is not None
        async with _translated():
            client = await self._client(user)
            approvals = await client.pending_approvals(approver=approver)
        return [_lease_task(a) for a in approvals]

    async def read(self, user: InboxUser, task: TaskRef, *, details: bool = True) -> LiveTask:
        approver = self.identity(user)
        assert approver is not None
        async with _translated():
            client = await self._client(user)
            detail = await client.approval_detail(
                approver=approver, workflow_name=task.source_ref or "", record_id=task.task_id
            )
        pending = (detail.status or "Pending").casefold() == "pending"
        offered = {a.upper() for a in detail.actions}
        return LiveTask(
            pending=pending,
            actions=tuple(a for a in SUPPORTED_ACTIONS if a in offered),
            details=_lease_details(detail) if details else {},
            handle=detail,
        )

    async def act(
        self, user: InboxUser, task: TaskRef, live: LiveTask, *, action: str, comment: str | None
    ) -> None:
        approver = self.identity(user)
        assert approver is not None
        async with _translated():
            client = await self._client(user)
            await client.take_action(
                approver=approver,
                workflow_name=task.source_ref or "",
                record_id=task.task_id,
                action=action,
                comment=comment,
                detail=live.handle,
            )


def _lease_task(approval: LeasingApproval) -> SourceTask:
    unit = f" unit {approval.unit}" if approval.unit else ""
    where = f"{approval.property_code or ''}{unit}".strip()
    title = approval.description or f"{approval.workflow_name} {approval.record_id}"
    summary = " · ".join(p for p in (approval.tenant, where) if p) or None
    return SourceTask(
        task_id=approval.record_id,
        source_ref=approval.workflow_name,
        title=title[:500],
        summary=summary,
        assigned_at=_midnight(approval.requested_on),
        due_at=_midnight(approval.due_on),
    )


def _midnight(day: date | None) -> datetime | None:
    """A Yardi date (no time of day) as the start of that day, UTC."""
    return datetime.combine(day, time(), UTC) if day is not None else None


def _lease_details(detail: LeasingApprovalDetail) -> dict[str, Any]:
    return {
        "type": detail.type,
        "workflow": detail.workflow_name,
        "record_code": detail.record_code,
        "property": detail.property_code,
        "property_name": detail.property_name,
        "unit": detail.unit,
        "applicant": detail.tenant,
        "requested_by": detail.requested_by,
        "rent": str(detail.amount) if detail.amount is not None else None,
        "currency": detail.currency,
        "lease_start": detail.lease_start.isoformat() if detail.lease_start else None,
        "lease_end": detail.lease_end.isoformat() if detail.lease_end else None,
        "attachments": [a.name or a.id for a in detail.attachments],
    }

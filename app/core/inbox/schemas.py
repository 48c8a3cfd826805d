"""Request and response bodies of every inbox's routes (the same in each module)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.core.schemas import Page, RequestBody

Action = Literal["APPROVE", "REJECT"]
TaskStatus = Literal["pending", "approved", "rejected", "closed"]
RefreshOutcome = Literal["synced", "timed_out", "failed", "skipped"]
MAX_BULK = 50
MAX_COMMENT = 2000


class TaskRead(BaseModel):
    """A task of the local inbox."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    task_id: str
    source: str
    title: str
    summary: str | None
    status: TaskStatus
    close_reason: str | None
    priority: int | None
    assigned_at: datetime | None
    due_at: datetime | None
    synced_at: datetime
    """When the source last confirmed this task."""
    closed_at: datetime | None


class TaskPage(Page[TaskRead]):
    synced_at: datetime | None
    """The last successful sync of the whole inbox (None: never synced)."""
    refresh: RefreshOutcome | None = None
    """With ``refresh=true``: whether the sync ran, or the page is the local copy."""


class TaskDetailRead(TaskRead):
    """A task with what its source allows now and the module's details, read live."""

    actions: list[str]
    details: dict[str, Any]


class ActionIn(RequestBody):
    action: Action
    comment: str | None = Field(default=None, max_length=MAX_COMMENT)


class ActionOut(BaseModel):
    outcome: Literal["succeeded"] = "succeeded"
    task: TaskRead
    approval_id: uuid.UUID


class BulkItemIn(ActionIn):
    id: uuid.UUID


class BulkIn(RequestBody):
    items: list[BulkItemIn] = Field(min_length=1, max_length=MAX_BULK)


class BulkResult(BaseModel):
    id: uuid.UUID
    outcome: Literal["succeeded", "failed"]
    code: str | None = None
    retry_after: int | None = None
    approval_id: uuid.UUID | None = None
    status: TaskStatus | None = None


class BulkOut(BaseModel):
    results: list[BulkResult]


class ApprovalRead(BaseModel):
    """One action attempt of the audit trail."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    user_id: uuid.UUID
    task_id: str
    source: str
    action: str
    comment: str | None
    outcome: Literal["succeeded", "failed"]
    error_code: str | None
    title: str | None
    acted_at: datetime


class ApprovalPage(Page[ApprovalRead]):
    pass

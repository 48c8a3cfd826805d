"""Shapes shared by several publishers' contracts (no event names here)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.events import Event

ApprovalAction = Literal["APPROVE", "REJECT"]
TaskSource = Literal["oracle_fusion", "yardi"]


class Snapshot(BaseModel):
    """A small frozen value object carried inside an event."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class ApprovalAudited(Event):
    """A user acted on a task at its source system; the publishing module audits it."""

    user_id: uuid.UUID
    approval_id: uuid.UUID | None = None
    """The id the action answered with; the audit record is stored under it, once."""
    task_id: str = Field(min_length=1, max_length=200)
    source: TaskSource
    action: ApprovalAction
    comment: str | None = None
    outcome: Literal["succeeded", "failed"]
    error_code: str | None = None
    title: str | None = None
    acted_at: datetime


class PendingTaskReceived(Event):
    """A task that was not in the user's inbox before appeared at the source system."""

    user_id: uuid.UUID
    task_id: str = Field(min_length=1, max_length=200)
    source: TaskSource
    title: str
    summary: str | None = None
    assigned_at: datetime | None = None
    due_at: datetime | None = None
    sync_id: uuid.UUID | None = None
    """The sync that found the task: the tasks one sync finds may share one summary push."""


TaskCloseReason = Literal["approved", "rejected", "decided_elsewhere", "no_longer_pending"]
"""Why a task left the inbox: acted on here, decided at the source before our action reached it,
or no longer listed by the source (decided elsewhere, withdrawn, reassigned or expired)."""


class PendingTaskClosed(Event):
    """A task left the user's inbox; its notification is resolved."""

    user_id: uuid.UUID
    task_id: str = Field(min_length=1, max_length=200)
    source: TaskSource
    reason: TaskCloseReason

"""What an inbox asks of its source system, in the source's terms translated to plain values.

A module implements :class:`TaskSource` over its integration client and maps the client's errors
onto :class:`SourceError` kinds, so the inbox can tell "the task is gone" from "try later"
without knowing the wire.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from app.core.errors import TransientError


@dataclass(frozen=True, slots=True)
class InboxUser:
    """Who the inbox belongs to, and how the sources know them."""

    organization_id: uuid.UUID
    user_id: uuid.UUID
    email: str | None = None
    oracle_username: str | None = None
    person_number: str | None = None
    user_type: str | None = None
    is_active: bool = True

    @classmethod
    def of(cls, organization_id: uuid.UUID, user_id: uuid.UUID, snapshot: Any) -> InboxUser:
        """The user as a user event's snapshot describes them (``email``, ``user_type``...)."""
        return cls(
            organization_id=organization_id,
            user_id=user_id,
            email=snapshot.email,
            oracle_username=snapshot.oracle_username,
            person_number=snapshot.person_number,
            user_type=snapshot.user_type,
            is_active=snapshot.is_active,
        )

    @classmethod
    def requested(cls, request: Any) -> InboxUser:
        """The user a sync request (``user.sync.task.notifications``) names, as it names them.

        Only the identity: the type and state come from the inbox's read model (see
        ``SyncingInbox.sync_requested``).
        """
        return cls(
            organization_id=request.organization_id,
            user_id=request.user_id,
            email=request.email,
            oracle_username=request.oracle_username,
            person_number=request.person_number,
        )


@dataclass(frozen=True, slots=True)
class TaskRef:
    """How the source finds one task."""

    task_id: str
    source_ref: str | None = None


@dataclass(frozen=True, slots=True)
class SourceTask:
    """A pending task as the source lists it."""

    task_id: str
    title: str
    source_ref: str | None = None
    summary: str | None = None
    priority: int | None = None
    assigned_at: datetime | None = None
    due_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class LiveTask:
    """A task read live at the source: whether it is still pending, what it allows, details."""

    pending: bool
    actions: tuple[str, ...] = ()
    """The actions the source allows now, upper case (APPROVE, REJECT...)."""
    details: Mapping[str, Any] = field(default_factory=dict)
    handle: Any = None
    """What the source's adapter wants back when acting (its own detail object)."""


class SourceError(Exception):
    """A call to the source failed; ``code`` is the stable code the client sees."""

    code = "upstream_error"
    status = 502

    def __init__(self, detail: str = "", *, retry_after: float | None = None) -> None:
        super().__init__(detail or self.code)
        self.detail = detail
        self.retry_after = retry_after


class SourceTaskGone(SourceError):
    """The source says the task is decided, withdrawn or unknown."""

    code = "task_already_decided"
    status = 409


class SourceActionRefused(SourceError):
    """The source refuses this action on this task."""

    code = "action_not_allowed"
    status = 422


class SourceUnavailable(SourceError, TransientError):
    """The source is down, throttling us, or our breaker for it is open.

    A :class:`~app.core.errors.TransientError`: a durable sync raising it is retried, after
    ``retry_after`` when the source said when to come back."""

    code = "upstream_unavailable"
    status = 503

    def __init__(
        self, detail: str = "", *, retry_after: float | None = None, breaker_open: bool = False
    ) -> None:
        super().__init__(detail, retry_after=retry_after)
        self.breaker_open = breaker_open


class SourceNotConfigured(SourceError):
    """The organisation has no (enabled) connection to the source."""

    code = "integration_not_configured"
    status = 503


class TaskSource(Protocol):
    """A source system as one inbox sees it."""

    name: str
    """``oracle_fusion`` or ``yardi``."""

    def identity(self, user: InboxUser) -> str | None:
        """Return who ``user`` is at the source, or None when the source cannot know them."""
        ...

    async def pending(self, user: InboxUser) -> Sequence[SourceTask]:
        """Return every task pending for ``user`` (all pages)."""
        ...

    async def read(self, user: InboxUser, task: TaskRef, *, details: bool = True) -> LiveTask:
        """Read one task live (with the module's details unless ``details`` is False)."""
        ...

    async def act(
        self, user: InboxUser, task: TaskRef, live: LiveTask, *, action: str, comment: str | None
    ) -> None:
        """Take ``action`` on the task as ``user``."""
        ...

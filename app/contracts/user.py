"""Events published by the user module."""

from __future__ import annotations

import uuid
from typing import ClassVar, Literal

from pydantic import Field

from app.contracts.common import Snapshot
from app.events import Event

Role = Literal["employee", "admin"]
UserType = Literal["EMPLOYEE", "CONTRACTOR", "EXTERNAL"]


class UserSnapshot(Snapshot):
    """What listeners usually need to know about a user, without asking the user module."""

    email: str
    role: Role
    user_type: UserType
    first_name: str | None = None
    last_name: str | None = None
    oracle_username: str | None = None
    person_number: str | None = None
    is_active: bool = True


class UserCreated(Event):
    """A user was added to an organisation."""

    name: ClassVar[str] = "user.created"

    user_id: uuid.UUID
    user: UserSnapshot


class UserUpdated(Event):
    """A user changed; ``changed_fields`` names what changed."""

    name: ClassVar[str] = "user.updated"

    user_id: uuid.UUID
    changed_fields: tuple[str, ...] = Field(min_length=1)
    user: UserSnapshot


class UserDeleted(Event):
    """A user was soft-deleted and can no longer log in."""

    name: ClassVar[str] = "user.deleted"

    user_id: uuid.UUID


class UserProfileSyncRequested(Event):
    """Refresh an EMPLOYEE's profile and line managers from Oracle Fusion HCM."""

    name: ClassVar[str] = "user.syncProfile"

    user_id: uuid.UUID
    oracle_username: str | None = None
    person_number: str | None = None
    first_time: bool = False
    requested_by: Literal["user", "admin", "scheduler"] = "user"
    run_id: uuid.UUID | None = None
    """The scheduler's run that asked (``requested_by="scheduler"``), if any."""

    def dedupe_key(self) -> str | None:
        # A run asks once per user: its fan-out may rewrite a page after a crash.
        return f"{self.run_id}:{self.user_id}" if self.run_id else None


class UserTaskSyncRequested(Event):
    """Fetch the user's pending approvals from every source system."""

    name: ClassVar[str] = "user.sync.task.notifications"

    user_id: uuid.UUID
    email: str
    oracle_username: str | None = None
    person_number: str | None = None
    requested_by: Literal["user", "admin", "scheduler", "profile_sync"] = "scheduler"
    run_id: uuid.UUID | None = None
    """The scheduler's run that asked (the task sweep), if any."""

    def dedupe_key(self) -> str | None:
        # A run asks once per user: its fan-out may rewrite a page after a crash.
        return f"{self.run_id}:{self.user_id}" if self.run_id else None


class UserCredentialsChanged(Event):
    """A user's password was set. It carries the argon2id hash only, never the plaintext.

    The auth module keeps the hash in its credentials read model and ends the user's sessions,
    all but ``kept_session_id`` (the session of a user who set their own password). Subscribe
    inline only, so the hash never lands in the outbox or a log.
    """

    name: ClassVar[str] = "user.credentials.changed"
    sensitive: ClassVar[bool] = True

    user_id: uuid.UUID
    password_hash: str = Field(min_length=1, repr=False)
    kept_session_id: uuid.UUID | None = None


class UserResyncRequested(Event):
    """An admin asked to resync one employee's profile, or (``user_id`` None) the organisation's.

    The user module fans it out into one ``user.syncProfile`` per active EMPLOYEE, page by page.
    """

    name: ClassVar[str] = "user.resync.requested"

    user_id: uuid.UUID | None = None
    requested_by_user_id: uuid.UUID | None = None

"""What admins see of jobs and their runs (the API's bodies and the CLI's JSON)."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from app.core.schemas import Page


class RunRead(BaseModel):
    """One run of a job for the organisation."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    job_id: str
    scheduled_for: datetime
    started_at: datetime
    finished_at: datetime | None
    status: str
    """``running``, ``succeeded``, ``partial`` (some users failed), ``failed`` or ``missed``."""
    users: int
    """Users whose events the run wrote (one delivery per user and durable listener)."""
    skipped: int
    """Users left out because their previous sync was still under way."""
    done: int
    """Users whose deliveries are finished (the progress of a running run)."""
    failures: int
    """Users with a delivery that became a dead letter."""
    triggered_by: str
    """``schedule`` or ``admin``."""
    error: str | None


class JobRead(BaseModel):
    """A job, when it runs next, and its last run for the organisation."""

    id: str
    description: str
    cron: str
    cron_setting: str
    time_zone: str
    next_run_at: datetime | None
    last_run: RunRead | None
    freshness_seconds: float | None
    """The age of the oldest last successful run among the users of the latest finished run
    (for ``task_sweep``: how stale the worst inbox is); None before a run has finished."""


class JobList(BaseModel):
    items: list[JobRead]


RunPage = Page[RunRead]
"""One page of a job's runs, newest first."""


class RunStarted(BaseModel):
    """A manual run was accepted; it fans out in a relay."""

    run_id: uuid.UUID

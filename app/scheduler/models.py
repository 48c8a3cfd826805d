"""The scheduler's tables: job runs, the subjects a running fan-out queued, and each subject's
last successful run (what freshness is measured from).

``scheduler_runs`` is unique on (job, organisation, scheduled time): the insert of a tick's row
is the whole cluster-wide "fire once" rule. ``scheduler_run_items`` lives only while its run
does (it is deleted when the run finishes); ``scheduler_subjects`` keeps one row per job,
organisation and subject.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, UUIDPrimaryKey


class RunStatus(StrEnum):
    """Where a run is in its life."""

    RUNNING = "running"
    """Fanning out, or waiting for its deliveries."""
    SUCCEEDED = "succeeded"
    """Every subject's deliveries are done."""
    PARTIAL = "partial"
    """Done, and some subjects' deliveries failed (dead letters)."""
    FAILED = "failed"
    """Every subject failed, or the run itself could not run."""
    MISSED = "missed"
    """The tick came later than the misfire grace: recorded, never run."""


class TriggeredBy(StrEnum):
    SCHEDULE = "schedule"
    ADMIN = "admin"


class JobRun(UUIDPrimaryKey, Base):
    """One run of one job for one organisation."""

    __tablename__ = "scheduler_runs"

    job_id: Mapped[str] = mapped_column(String(100))
    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    scheduled_for: Mapped[datetime]
    triggered_by: Mapped[str] = mapped_column(String(16))
    requested_by_user_id: Mapped[uuid.UUID | None]
    status: Mapped[str] = mapped_column(String(16), default=RunStatus.RUNNING.value)
    users: Mapped[int] = mapped_column(Integer, default=0)
    """Subjects whose events this run wrote."""
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    """Subjects left out because their previous run's work was still under way."""
    done: Mapped[int] = mapped_column(Integer, default=0)
    """Subjects whose deliveries are finished (the progress of a running run)."""
    failures: Mapped[int] = mapped_column(Integer, default=0)
    cursor: Mapped[str | None] = mapped_column(String(200))
    """The last subject key written: a resumed fan-out continues after it."""
    fanned_out: Mapped[bool] = mapped_column(default=False)
    error: Mapped[str | None] = mapped_column(String(1000))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]

    __table_args__ = (
        UniqueConstraint("job_id", "organization_id", "scheduled_for"),
        CheckConstraint(
            "status IN ('running', 'succeeded', 'partial', 'failed', 'missed')", name="status"
        ),
        # The admin's history, newest first, and "is a run of this job in progress".
        Index("ix_scheduler_runs_org_job_started", "organization_id", "job_id", "started_at"),
        Index(
            "ix_scheduler_runs_running",
            "job_id",
            "organization_id",
            postgresql_where=text("status = 'running'"),
            sqlite_where=text("status = 'running'"),
        ),
        # One manual run at a time per job and organisation, even when two admins click at once.
        Index(
            "uq_scheduler_runs_manual_running",
            "job_id",
            "organization_id",
            unique=True,
            postgresql_where=text("status = 'running' AND triggered_by = 'admin'"),
            sqlite_where=text("status = 'running' AND triggered_by = 'admin'"),
        ),
    )


class JobRunItem(Base):
    """One subject (a user) of a running fan-out, and the event it was asked with."""

    __tablename__ = "scheduler_run_items"

    run_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("scheduler_runs.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    event_name: Mapped[str | None] = mapped_column(String(200))
    dedupe_key: Mapped[str | None] = mapped_column(String(200))
    """The event's outbox dedupe key (how its deliveries are found); None: skipped."""


class JobSubject(Base):
    """A subject's history with one job: when it was last seen and last succeeded."""

    __tablename__ = "scheduler_subjects"

    job_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    first_seen_at: Mapped[datetime]
    last_run_id: Mapped[uuid.UUID]
    """The last finished run that included the subject (the active ones are those of the
    latest finished fan-out)."""
    last_succeeded_at: Mapped[datetime | None]

"""Queries of the scheduler: run rows, the items of running fan-outs, subjects' history."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, case, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.tenancy import Organization
from app.events.outbox.models import OPEN_STATUSES, OutboxDelivery, OutboxEvent
from app.scheduler.models import JobRun, JobRunItem, JobSubject, RunStatus

FAILED_DELIVERY = ("dead", "discarded")
FINISHED = (RunStatus.SUCCEEDED.value, RunStatus.PARTIAL.value, RunStatus.FAILED.value)


def _insert(session: AsyncSession, table: Any) -> Any:
    """An INSERT that speaks ``ON CONFLICT`` on the session's database (SQLite or PostgreSQL)."""
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


async def organization_ids(session: AsyncSession) -> Sequence[uuid.UUID]:
    return (await session.scalars(select(Organization.id).order_by(Organization.id))).all()


async def insert_run(session: AsyncSession, values: dict[str, Any]) -> bool:
    """Insert a run row unless its (job, organisation, scheduled time) exists; True if new."""
    statement = (
        _insert(session, JobRun)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["job_id", "organization_id", "scheduled_for"])
        .returning(JobRun.id)
    )
    return (await session.execute(statement)).scalar_one_or_none() is not None


async def get_run(
    session: AsyncSession, run_id: uuid.UUID, *, organization_id: uuid.UUID | None = None
) -> JobRun | None:
    query = select(JobRun).where(JobRun.id == run_id)
    if organization_id is not None:
        query = query.where(JobRun.organization_id == organization_id)
    return (await session.scalars(query)).one_or_none()


async def running_run(
    session: AsyncSession, job_id: str, organization_id: uuid.UUID
) -> JobRun | None:
    """Return a run of this job and organisation still in progress, if any."""
    query = select(JobRun).where(
        JobRun.job_id == job_id,
        JobRun.organization_id == organization_id,
        JobRun.status == RunStatus.RUNNING.value,
    )
    return (await session.scalars(query.limit(1))).first()


async def running_runs(session: AsyncSession, *, limit: int = 100) -> Sequence[JobRun]:
    query = select(JobRun).where(JobRun.status == RunStatus.RUNNING.value)
    return (await session.scalars(query.order_by(JobRun.started_at).limit(limit))).all()


async def last_run(session: AsyncSession, job_id: str, organization_id: uuid.UUID) -> JobRun | None:
    query = select(JobRun).where(JobRun.job_id == job_id, JobRun.organization_id == organization_id)
    return (await session.scalars(query.order_by(JobRun.started_at.desc()).limit(1))).first()


async def list_runs(
    session: AsyncSession, job_id: str, organization_id: uuid.UUID, *, limit: int, offset: int
) -> tuple[Sequence[JobRun], int]:
    """Return one page of the job's runs for the organisation, newest first, and the total."""
    where = (JobRun.job_id == job_id, JobRun.organization_id == organization_id)
    total = await session.scalar(select(func.count()).select_from(JobRun).where(*where))
    query = (
        select(JobRun)
        .where(*where)
        .order_by(JobRun.started_at.desc(), JobRun.id)
        .limit(limit)
        .offset(offset)
    )
    return (await session.scalars(query)).all(), int(total or 0)


async def keys_in_flight(
    session: AsyncSession,
    *,
    job_id: str,
    organization_id: uuid.UUID,
    keys: Sequence[str],
    exclude_run: uuid.UUID,
) -> set[str]:
    """Return the keys whose event from another running run of the job still has open work."""
    query = (
        select(JobRunItem.key)
        .join(JobRun, JobRun.id == JobRunItem.run_id)
        .join(
            OutboxEvent,
            and_(
                OutboxEvent.name == JobRunItem.event_name,
                OutboxEvent.dedupe_key == JobRunItem.dedupe_key,
                OutboxEvent.dedupe_key.is_not(None),
            ),
        )
        .join(OutboxDelivery, OutboxDelivery.event_id == OutboxEvent.id)
        .where(
            JobRun.job_id == job_id,
            JobRun.organization_id == organization_id,
            JobRun.status == RunStatus.RUNNING.value,
            JobRun.id != exclude_run,
            JobRunItem.key.in_(keys),
            OutboxDelivery.status.in_(OPEN_STATUSES),
        )
        .distinct()
    )
    return set((await session.scalars(query)).all())


async def add_items(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await session.execute(_insert(session, JobRunItem), list(rows))


async def advance(
    session: AsyncSession,
    run_id: uuid.UUID,
    *,
    cursor: str | None,
    queued: int,
    skipped: int,
    fanned_out: bool,
) -> bool:
    """Record a written page on a running run; False when the run is no longer running."""
    statement = (
        update(JobRun)
        .where(JobRun.id == run_id, JobRun.status == RunStatus.RUNNING.value)
        .values(
            cursor=cursor,
            users=JobRun.users + queued,
            skipped=JobRun.skipped + skipped,
            fanned_out=fanned_out,
        )
    )
    return bool((await session.execute(statement)).rowcount)  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class ItemState:
    """Where one subject of a run is: still open, failed, or done (and when)."""

    key: str
    skipped: bool
    open: bool
    failed: bool
    completed_at: datetime | None


def _item_states(run_id: uuid.UUID) -> Any:
    is_open = case((OutboxDelivery.status.in_(OPEN_STATUSES), 1), else_=0)
    is_failed = case((OutboxDelivery.status.in_(FAILED_DELIVERY), 1), else_=0)
    return (
        select(
            JobRunItem.key.label("key"),
            (JobRunItem.dedupe_key.is_(None)).label("skipped"),
            func.coalesce(func.sum(is_open), 0).label("open"),
            func.coalesce(func.sum(is_failed), 0).label("failed"),
            func.max(OutboxDelivery.completed_at).label("completed_at"),
        )
        .select_from(JobRunItem)
        .outerjoin(
            OutboxEvent,
            and_(
                OutboxEvent.name == JobRunItem.event_name,
                OutboxEvent.dedupe_key == JobRunItem.dedupe_key,
                OutboxEvent.dedupe_key.is_not(None),
            ),
        )
        .outerjoin(OutboxDelivery, OutboxDelivery.event_id == OutboxEvent.id)
        .where(JobRunItem.run_id == run_id)
        .group_by(JobRunItem.key, JobRunItem.dedupe_key)
    )


@dataclass(frozen=True, slots=True)
class Progress:
    queued: int
    open: int
    failed: int

    @property
    def done(self) -> int:
        return self.queued - self.open


async def progress(session: AsyncSession, run_id: uuid.UUID) -> Progress:
    """Count the run's queued subjects, those with open deliveries, and those that failed."""
    states = _item_states(run_id).subquery()
    queued = func.coalesce(func.sum(case((states.c.skipped.is_(False), 1), else_=0)), 0)
    still_open = func.coalesce(func.sum(case((states.c.open > 0, 1), else_=0)), 0)
    failed = func.coalesce(
        func.sum(case((and_(states.c.open == 0, states.c.failed > 0), 1), else_=0)), 0
    )
    row = (await session.execute(select(queued, still_open, failed))).one()
    return Progress(int(row[0]), int(row[1]), int(row[2]))


async def item_states(
    session: AsyncSession, run_id: uuid.UUID, *, after: str | None, limit: int
) -> Sequence[ItemState]:
    """Return one page of the run's subjects with their state, by key."""
    query = _item_states(run_id).order_by(JobRunItem.key).limit(limit)
    if after is not None:
        query = query.where(JobRunItem.key > after)
    return [
        ItemState(row.key, bool(row.skipped), row.open > 0, row.failed > 0, row.completed_at)
        for row in (await session.execute(query)).all()
    ]


async def record_subjects(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Upsert subjects' history; a None ``last_succeeded_at`` keeps the previous success."""
    if not rows:
        return
    statement = _insert(session, JobSubject)
    statement = statement.on_conflict_do_update(
        index_elements=["job_id", "organization_id", "key"],
        set_={
            "last_run_id": statement.excluded.last_run_id,
            "last_succeeded_at": func.coalesce(
                statement.excluded.last_succeeded_at, JobSubject.last_succeeded_at
            ),
        },
    )
    await session.execute(statement, list(rows))


async def finish(session: AsyncSession, run_id: uuid.UUID, **values: Any) -> bool:
    """Close a running run; False when someone else already did."""
    statement = (
        update(JobRun)
        .where(JobRun.id == run_id, JobRun.status == RunStatus.RUNNING.value)
        .values(**values)
    )
    return bool((await session.execute(statement)).rowcount)  # type: ignore[attr-defined]


async def set_done(session: AsyncSession, run_id: uuid.UUID, done: int) -> None:
    await session.execute(update(JobRun).where(JobRun.id == run_id).values(done=done))


async def delete_items(session: AsyncSession, run_id: uuid.UUID) -> None:
    await session.execute(delete(JobRunItem).where(JobRunItem.run_id == run_id))


async def oldest_success(
    session: AsyncSession, job_id: str, organization_id: uuid.UUID
) -> datetime | None:
    """Return the oldest last success among the subjects of the latest finished fan-out.

    A subject that never succeeded counts from when it was first seen.
    """
    latest = (
        select(JobRun.id)
        .where(
            JobRun.job_id == job_id,
            JobRun.organization_id == organization_id,
            JobRun.status.in_(FINISHED),
            JobRun.fanned_out.is_(True),
        )
        .order_by(JobRun.finished_at.desc())
        .limit(1)
        .scalar_subquery()
    )
    query = select(
        func.min(func.coalesce(JobSubject.last_succeeded_at, JobSubject.first_seen_at))
    ).where(
        JobSubject.job_id == job_id,
        JobSubject.organization_id == organization_id,
        JobSubject.last_run_id == latest,
    )
    value = await session.scalar(query)
    return _aware(value)


def _aware(value: Any) -> datetime | None:
    # min() over a UTCDateTime column comes back as SQLite's text or a naive value.
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

"""The scheduler's rules: a run row per tick and organisation, the paged fan-out, finishing runs.

A tick inserts one run row per organisation, unique on (job, organisation, scheduled time), and
the ``scheduler.run.started`` event in the same transaction; the process that loses the insert
does nothing. The fan-out runs in a relay (the durable listener of that event): it reads the
job's subjects page by page and writes their events as durable deliveries with the page's items,
in one transaction a page, so a crash resumes after the last page written. A run finishes when
the deliveries of its events are done; its subjects' successes feed the freshness figure.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.contracts.scheduler import JobRunStarted
from app.core.db import session_scope, utcnow
from app.core.modules import JobContext, JobSpec
from app.events import Event, publish
from app.scheduler import metrics, repository
from app.scheduler.errors import JobRunning
from app.scheduler.models import JobRun, RunStatus, TriggeredBy

logger = logging.getLogger("app.scheduler")

SUBJECT_BATCH = 1000
"""Subjects recorded per statement when a run finishes."""


async def start_run(
    session: AsyncSession,
    *,
    job: JobSpec,
    organization_id: uuid.UUID,
    scheduled_for: datetime,
    triggered_by: TriggeredBy,
    now: datetime,
    missed: bool = False,
    requested_by_user_id: uuid.UUID | None = None,
) -> uuid.UUID | None:
    """Insert the run row of one tick for one organisation and ask for its fan-out.

    Returns:
        The new run's id, or None when that tick's row already exists (another process won).
    """
    run_id = uuid.uuid4()
    status = RunStatus.MISSED if missed else RunStatus.RUNNING
    inserted = await repository.insert_run(
        session,
        {
            "id": run_id,
            "job_id": job.id,
            "organization_id": organization_id,
            "scheduled_for": scheduled_for,
            "triggered_by": triggered_by.value,
            "requested_by_user_id": requested_by_user_id,
            "status": status.value,
            "users": 0,
            "skipped": 0,
            "done": 0,
            "failures": 0,
            "fanned_out": missed,
            "started_at": now,
            "finished_at": now if missed else None,
        },
    )
    if not inserted:
        return None
    if missed:
        metrics.run_finished(job.id, status.value, 0.0)
    else:
        await publish(JobRunStarted(organization_id=organization_id, run_id=run_id, job_id=job.id))
    return run_id


async def run_now(
    session: AsyncSession,
    *,
    job: JobSpec,
    organization_id: uuid.UUID,
    requested_by_user_id: uuid.UUID | None,
    now: datetime | None = None,
) -> uuid.UUID:
    """Start a run of ``job`` for one organisation by hand.

    Raises:
        JobRunning: a run of the job for the organisation is still in progress.
    """
    if await repository.running_run(session, job.id, organization_id) is not None:
        raise JobRunning()
    now = now or utcnow()
    try:
        async with session.begin_nested():
            run_id = await start_run(
                session,
                job=job,
                organization_id=organization_id,
                scheduled_for=now,
                triggered_by=TriggeredBy.ADMIN,
                now=now,
                requested_by_user_id=requested_by_user_id,
            )
    except IntegrityError:  # two admins at the same moment: one manual run at a time
        raise JobRunning() from None
    if run_id is None:
        raise JobRunning()
    return run_id


async def fan_out(*, run_id: uuid.UUID, job: JobSpec, page_size: int) -> None:
    """Write the run's per-subject events, one transaction a page, resuming after its cursor.

    A subject whose event from an earlier, still running run of the job has open deliveries is
    recorded as skipped: it is never queued twice.
    """
    async with session_scope(join=False) as session:
        run = await repository.get_run(session, run_id)
        if run is None or run.status != RunStatus.RUNNING.value or run.fanned_out:
            return
        context = JobContext(
            job_id=run.job_id,
            run_id=run.id,
            organization_id=run.organization_id,
            scheduled_for=run.scheduled_for,
            triggered_by=run.triggered_by,
        )
        after = run.cursor
    if job.run is not None:
        async with session_scope(join=False) as session:
            await job.run(session, context)
            await repository.advance(
                session, run_id, cursor=None, queued=0, skipped=0, fanned_out=True
            )
        return
    assert job.fan_out is not None
    while True:
        async with session_scope(join=False) as session:
            items = await job.fan_out(session, context, after, page_size)
            keys = [item.key for item in items]
            busy = (
                await repository.keys_in_flight(
                    session,
                    job_id=job.id,
                    organization_id=context.organization_id,
                    keys=keys,
                    exclude_run=run_id,
                )
                if keys
                else set()
            )
            rows: list[dict[str, Any]] = []
            for item in items:
                if item.key in busy:
                    rows.append({"run_id": run_id, "key": item.key})
                    continue
                event: Event = item.event
                dedupe_key = event.dedupe_key()
                if dedupe_key is None:
                    raise TypeError(f"{event.name} of job {job.id!r} needs a dedupe_key()")
                await publish(event)
                rows.append(
                    {
                        "run_id": run_id,
                        "key": item.key,
                        "event_name": event.name,
                        "dedupe_key": dedupe_key,
                    }
                )
            await repository.add_items(session, rows)
            last_page = len(items) < page_size
            if not await repository.advance(
                session,
                run_id,
                cursor=keys[-1] if keys else after,
                queued=len(rows) - len(busy),
                skipped=len(busy),
                fanned_out=last_page,
            ):
                await session.rollback()
                return  # finished or failed meanwhile (an admin, a reconcile): stop here
        if last_page:
            return
        after = keys[-1]


async def fail_run(*, run_id: uuid.UUID, error: str, now: datetime | None = None) -> None:
    """Close a run that cannot run (its job is unknown, its fan-out gave up)."""
    finished_at = now or utcnow()
    async with session_scope(join=False) as session:
        run = await repository.get_run(session, run_id)
        finished = await repository.finish(
            session,
            run_id,
            status=RunStatus.FAILED.value,
            error=error[:1000],
            fanned_out=True,
            finished_at=finished_at,
        )
        await repository.delete_items(session, run_id)
    if finished and run is not None:
        seconds = (finished_at - run.started_at).total_seconds()
        metrics.run_finished(run.job_id, RunStatus.FAILED.value, seconds)


@dataclass(frozen=True, slots=True)
class Reconciled:
    run_id: uuid.UUID
    status: str
    done: int
    queued: int


async def reconcile(*, now: datetime | None = None, limit: int = 100) -> list[Reconciled]:
    """Update the progress of running runs and finish those whose deliveries are all done.

    Any number of processes may call it at once: a run is finished by exactly one of them.
    """
    async with session_scope(join=False) as session:
        runs = [
            (run.id, run.fanned_out) for run in await repository.running_runs(session, limit=limit)
        ]
    results: list[Reconciled] = []
    for run_id, fanned_out in runs:
        results.append(await reconcile_run(run_id, fanned_out=fanned_out, now=now))
    return results


async def reconcile_run(
    run_id: uuid.UUID, *, fanned_out: bool, now: datetime | None = None
) -> Reconciled:
    async with session_scope(join=False) as session:
        progress = await repository.progress(session, run_id)
        if not fanned_out or progress.open:
            await repository.set_done(session, run_id, progress.done)
            return Reconciled(run_id, RunStatus.RUNNING.value, progress.done, progress.queued)
        run = await repository.get_run(session, run_id)
        assert run is not None
        finished_at = now or utcnow()
        status = _final_status(queued=progress.queued, failures=progress.failed)
        if not await repository.finish(
            session,
            run_id,
            status=status.value,
            done=progress.done,
            failures=progress.failed,
            finished_at=finished_at,
        ):
            return Reconciled(run_id, run.status, run.done, run.users)
        await _record_subjects(session, run, finished_at)
        await repository.delete_items(session, run_id)
    metrics.run_finished(run.job_id, status.value, (finished_at - run.started_at).total_seconds())
    logger.info(
        "run %s of %s finished: %s, %d users, %d failures",
        run_id,
        run.job_id,
        status.value,
        progress.queued,
        progress.failed,
    )
    return Reconciled(run_id, status.value, progress.done, progress.queued)


def _final_status(*, queued: int, failures: int) -> RunStatus:
    if failures == 0:
        return RunStatus.SUCCEEDED
    return RunStatus.FAILED if failures >= queued else RunStatus.PARTIAL


async def _record_subjects(session: AsyncSession, run: JobRun, finished_at: datetime) -> None:
    after: str | None = None
    while True:
        states = await repository.item_states(session, run.id, after=after, limit=SUBJECT_BATCH)
        await repository.record_subjects(
            session,
            [
                {
                    "job_id": run.job_id,
                    "organization_id": run.organization_id,
                    "key": state.key,
                    "first_seen_at": run.started_at,
                    "last_run_id": run.id,
                    "last_succeeded_at": None
                    if state.skipped or state.failed
                    else state.completed_at or finished_at,
                }
                for state in states
            ],
        )
        if len(states) < SUBJECT_BATCH:
            return
        after = states[-1].key


async def freshness_seconds(
    session: AsyncSession, *, job_id: str, organization_id: uuid.UUID, now: datetime | None = None
) -> float | None:
    """Return how stale the worst subject is: the age of the oldest last success among the
    subjects of the job's latest finished fan-out (None before one has finished)."""
    oldest = await repository.oldest_success(session, job_id, organization_id)
    if oldest is None:
        return None
    return max(0.0, ((now or utcnow()) - oldest).total_seconds())


async def freshness_by_organization(
    *, job_id: str = "task_sweep", now: datetime | None = None
) -> dict[uuid.UUID, float]:
    """Return each organisation's freshness for a job (the metrics' gauge reads this).

    Organisations with no finished fan-out yet are left out.
    """
    now = now or utcnow()
    async with session_scope(join=False) as session:
        found: dict[uuid.UUID, float] = {}
        for organization_id in await repository.organization_ids(session):
            seconds = await freshness_seconds(
                session, job_id=job_id, organization_id=organization_id, now=now
            )
            if seconds is not None:
                found[organization_id] = seconds
        return found

"""Read models of the scheduler: the job list with next runs and freshness, run pages."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.modules import JobSpec
from app.core.settings import SchedulerSettings
from app.scheduler import repository, service
from app.scheduler.catalog import get_job, registered_jobs
from app.scheduler.engine import job_triggers, next_run_at
from app.scheduler.errors import JobNotFound
from app.scheduler.schemas import JobList, JobRead, RunPage, RunRead


def job_or_404(job_id: str) -> JobSpec:
    job = get_job(job_id)
    if job is None:
        raise JobNotFound()
    return job


async def list_jobs(
    session: AsyncSession,
    *,
    organization_id: uuid.UUID,
    settings: SchedulerSettings,
    now: datetime,
) -> JobList:
    jobs = registered_jobs()
    triggers = job_triggers(jobs, settings)
    items = []
    for job in jobs:
        last = await repository.last_run(session, job.id, organization_id)
        items.append(
            JobRead(
                id=job.id,
                description=job.description,
                cron=job.cron(),
                cron_setting=job.cron_setting,
                time_zone=settings.timezone,
                next_run_at=next_run_at(triggers[job.id], now),
                last_run=RunRead.model_validate(last) if last is not None else None,
                freshness_seconds=await service.freshness_seconds(
                    session, job_id=job.id, organization_id=organization_id, now=now
                )
                if job.fan_out is not None
                else None,
            )
        )
    return JobList(items=items)


async def list_runs(
    session: AsyncSession, *, job_id: str, organization_id: uuid.UUID, limit: int, offset: int
) -> RunPage:
    job_or_404(job_id)
    runs, total = await repository.list_runs(
        session, job_id, organization_id, limit=limit, offset=offset
    )
    return RunPage(
        items=[RunRead.model_validate(run) for run in runs], total=total, limit=limit, offset=offset
    )

"""Admin routes of the scheduler: the jobs, their runs, and a run by hand.

Every route needs an admin and sees the caller's organisation only.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from app.core.db import DbSession, utcnow
from app.core.security import RequireAdmin
from app.core.settings import get_settings
from app.scheduler import queries, service
from app.scheduler.schemas import JobList, RunPage, RunStarted

router = APIRouter(prefix="/admin/jobs", tags=["jobs"])

JobIdPath = Annotated[str, Path(min_length=1, max_length=100, description="A job's id.")]


@router.get("", response_model=JobList)
async def list_jobs(admin: RequireAdmin, session: DbSession) -> JobList:
    """List the jobs: cron, next run, the organisation's last run and freshness."""
    return await queries.list_jobs(
        session,
        organization_id=admin.organization_id,
        settings=get_settings().scheduler,
        now=utcnow(),
    )


@router.get("/{job_id}/runs", response_model=RunPage)
async def list_runs(
    job_id: JobIdPath,
    admin: RequireAdmin,
    session: DbSession,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=2**31)] = 0,
) -> RunPage:
    """List the job's runs for the organisation, newest first."""
    return await queries.list_runs(
        session, job_id=job_id, organization_id=admin.organization_id, limit=limit, offset=offset
    )


@router.post("/{job_id}/run", response_model=RunStarted, status_code=202)
async def run_job(job_id: JobIdPath, admin: RequireAdmin, session: DbSession) -> RunStarted:
    """Run the job now for the organisation; 409 ``job_running`` while a run is in progress."""
    run_id = await service.run_now(
        session,
        job=queries.job_or_404(job_id),
        organization_id=admin.organization_id,
        requested_by_user_id=admin.user_id,
    )
    return RunStarted(run_id=run_id)

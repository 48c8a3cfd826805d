"""Jobs: each scheduled job with its cron, next run and recent runs; run one now and watch it.

Everything comes from the scheduler's own read models and service (what ``GET /admin/jobs``
and ``POST /admin/jobs/{id}/run`` call), for the admin's organisation only.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy.ext.asyncio import AsyncSession

from app.console.security import ConsoleAdmin, CsrfAdmin
from app.console.views import render
from app.core.db import DbSession, utcnow
from app.core.security import Principal
from app.core.settings import get_settings
from app.scheduler import queries, service

router = APIRouter()

RECENT_RUNS = 20
JobId = Annotated[str, Path(min_length=1, max_length=100)]


@router.get("/jobs", response_class=Response)
async def jobs(request: Request, admin: ConsoleAdmin, session: DbSession) -> Response:
    """Every job, when it runs next, and its last run for the organisation."""
    listed = await queries.list_jobs(
        session,
        organization_id=admin.organization_id,
        settings=get_settings().scheduler,
        now=utcnow(),
    )
    return render(request, "jobs.html", admin=admin, page="jobs", jobs=listed.items)


async def _runs_page(
    request: Request, admin: Principal, session: AsyncSession, job_id: str, template: str
) -> Response:
    job = queries.job_or_404(job_id)
    runs = await queries.list_runs(
        session, job_id=job.id, organization_id=admin.organization_id, limit=RECENT_RUNS, offset=0
    )
    return render(
        request,
        template,
        admin=admin,
        page="jobs",
        job=job,
        runs=runs,
        running=any(run.status == "running" for run in runs.items),
    )


@router.get("/jobs/{job_id}", response_class=Response)
async def job(request: Request, job_id: JobId, admin: ConsoleAdmin, session: DbSession) -> Response:
    """One job's recent runs; while one runs, its progress refreshes itself."""
    return await _runs_page(request, admin, session, job_id, "job.html")


@router.get("/jobs/{job_id}/live", response_class=Response)
async def job_live(
    request: Request, job_id: JobId, admin: ConsoleAdmin, session: DbSession
) -> Response:
    """The job's runs alone, for the page's refresh script."""
    return await _runs_page(request, admin, session, job_id, "_runs.html")


@router.post("/jobs/{job_id}/run", response_class=Response)
async def run_job(job_id: JobId, admin: CsrfAdmin, session: DbSession) -> Response:
    """Run the job now for the organisation, then show its progress."""
    job = queries.job_or_404(job_id)
    await service.run_now(
        session, job=job, organization_id=admin.organization_id, requested_by_user_id=admin.user_id
    )
    return RedirectResponse(f"/console/jobs/{job.id}", status_code=303)

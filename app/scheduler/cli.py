"""``python -m app jobs ...``: list the jobs, run one for an organisation and watch it finish.

``app/cli.py`` mounts :func:`jobs_cli`; its commands run in the installed command runtime (the
process runtime of ``app/runtime.py``); ``python -m app scheduler`` lives there too, beside
``worker``.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated

import typer

from app.core.commands import fail, run_command
from app.core.db import session_scope, utcnow
from app.core.settings import get_settings
from app.core.tenancy import Organization, get_organization, get_organization_by_name
from app.scheduler import repository, service
from app.scheduler.catalog import get_job, registered_jobs
from app.scheduler.engine import job_triggers, next_run_at
from app.scheduler.errors import JobRunning
from app.scheduler.models import JobRun, RunStatus

POLL_SECONDS = 0.5
HINT_AFTER_SECONDS = 10.0


def jobs_cli() -> typer.Typer:
    """Return the ``jobs`` command group (its commands run with :func:`run_command`)."""
    group = typer.Typer(help="Scheduled jobs: list them, run one by hand.", no_args_is_help=True)
    run = run_command

    @group.command("list")
    def list_jobs() -> None:
        """List the jobs: id, cron (and its setting), next run (UTC), what it does."""

        async def work() -> None:
            settings = get_settings().scheduler
            jobs = registered_jobs()
            triggers = job_triggers(jobs, settings)
            now = utcnow()
            for job in jobs:
                upcoming = next_run_at(triggers[job.id], now)
                typer.echo(
                    f"{job.id:<14} {job.cron():<14} {settings.timezone:<8} next "
                    f"{upcoming.isoformat() if upcoming else '-':<26} {job.description}"
                )

        run(work)

    @group.command("run")
    def run_job(
        job_id: Annotated[str, typer.Argument(help="The job's id (see `jobs list`).")],
        organization: Annotated[
            str, typer.Option("--organization", help="The organisation's name or id.")
        ],
        wait: Annotated[
            bool,
            typer.Option("--wait/--no-wait", help="Show the run's progress until it finishes."),
        ] = True,
    ) -> None:
        """Run a job now for one organisation; its fan-out runs in the relays."""

        async def start() -> uuid.UUID:
            job = get_job(job_id)  # the runtime installs the modules' jobs
            if job is None:
                known = ", ".join(job.id for job in registered_jobs())
                typer.echo(f"no job {job_id!r}; the jobs are: {known}", err=True)
                raise typer.Exit(2)
            async with session_scope() as session:
                found = await _organization(organization)
                if found is None:
                    typer.echo(f"no organisation {organization!r}", err=True)
                    raise typer.Exit(2)
                try:
                    return await service.run_now(
                        session, job=job, organization_id=found.id, requested_by_user_id=None
                    )
                except JobRunning as exc:
                    fail(exc.code, f"a run of {job_id} is already in progress for {found.name}")

        async def work() -> JobRun:
            run_id = await start()
            typer.echo(f"run {run_id} started")
            return await _watch(run_id) if wait else await _run(run_id)

        finished = run(work)
        if wait:
            typer.echo(
                f"run {finished.id}: {finished.status}, {finished.users} users, "
                f"{finished.failures} failures, {finished.skipped} skipped"
            )
            if finished.status != RunStatus.SUCCEEDED.value:
                raise typer.Exit(1)

    return group


async def _organization(name_or_id: str) -> Organization | None:
    async with session_scope(join=False) as session:
        try:
            return await get_organization(session, uuid.UUID(name_or_id))
        except ValueError:
            return await get_organization_by_name(session, name_or_id)


async def _run(run_id: uuid.UUID) -> JobRun:
    async with session_scope(join=False) as session:
        run = await repository.get_run(session, run_id)
        assert run is not None
        return run


async def _watch(run_id: uuid.UUID) -> JobRun:
    """Show the run's users as they finish; finish the run itself when its work is done."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    hinted = False
    while True:
        run = await _run(run_id)
        if run.status != RunStatus.RUNNING.value:
            return run
        if run.fanned_out:
            break
        if not hinted and loop.time() - started > HINT_AFTER_SECONDS:
            typer.echo(
                "waiting for a relay to fan the run out (the API's or `python -m app worker`)",
                err=True,
            )
            hinted = True
        await asyncio.sleep(POLL_SECONDS)
    with typer.progressbar(length=run.users, label=f"{run.job_id}: users") as bar:
        shown = 0
        while True:
            progress = await service.reconcile_run(run_id, fanned_out=True)
            bar.update(progress.done - shown)
            shown = progress.done
            if progress.status != RunStatus.RUNNING.value:
                break
            await asyncio.sleep(POLL_SECONDS)
    return await _run(run_id)

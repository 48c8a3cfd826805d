"""The scheduler process's part: APScheduler fires the crons, each tick inserts its run rows.

APScheduler 3 keeps its job store in memory (it cannot share one between processes), so every
scheduler process fires every tick, and the run row, unique on (job, organisation, scheduled
time), decides which process does the work. A job is added with its next fire time computed
from now, so a process started mid-period never fires the tick it missed; a tick that comes
later than ``SCHEDULER_MISFIRE_GRACE_SECONDS`` (a stalled process) is recorded as ``missed``.
Runs whose deliveries are done are finished by a :class:`RunReconciler`: the scheduler runs one,
and so does every relay (``python -m app worker`` and the API's in-process relay), so a run
finishes without any scheduler process alive (a manual run, a scheduler killed mid-sweep).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.events import EVENT_JOB_EXECUTED, JobExecutionEvent
from apscheduler.executors.asyncio import AsyncIOExecutor
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from app.core.crontab import check_crontab, check_timezone
from app.core.db import session_scope, utcnow
from app.core.modules import JobSpec
from app.core.settings import SchedulerSettings
from app.events import tracing
from app.scheduler import metrics, repository, service
from app.scheduler.models import TriggeredBy

logger = logging.getLogger("app.scheduler")

Clock = Callable[[], datetime]


def job_triggers(jobs: Sequence[JobSpec], settings: SchedulerSettings) -> dict[str, CronTrigger]:
    """Parse every job's cron in ``SCHEDULER_TIMEZONE``.

    Raises:
        InvalidSchedule: a cron or the time zone does not parse (the message names the setting).
    """
    check_timezone("SCHEDULER_TIMEZONE", settings.timezone)
    return {job.id: check_crontab(job.cron_setting, job.cron(), settings.timezone) for job in jobs}


def next_run_at(trigger: CronTrigger, now: datetime) -> datetime | None:
    """Return the trigger's first fire time after ``now``, in UTC."""
    moment = trigger.get_next_fire_time(None, now)
    return moment.astimezone(UTC) if moment is not None else None


class _TickExecutor(AsyncIOExecutor):  # type: ignore[misc]
    """Runs a job's coroutine with the tick times it was due at (APScheduler's own executor
    drops them), so the run row names the tick, not the moment the process got to it."""

    def _do_submit_job(self, job: Any, run_times: list[datetime]) -> None:
        def done(future: asyncio.Future[None]) -> None:
            self._pending_futures.discard(future)
            if future.cancelled():
                return  # the scheduler is stopping: not an error of the job
            try:
                future.result()
            except BaseException:
                self._run_job_error(job.id, *sys.exc_info()[1:])
            else:
                events = [
                    JobExecutionEvent(EVENT_JOB_EXECUTED, job.id, job._jobstore_alias, run_time)
                    for run_time in run_times
                ]
                self._run_job_success(job.id, events)

        future = self._eventloop.create_task(job.func(*job.args, run_times=tuple(run_times)))
        future.add_done_callback(done)
        self._pending_futures.add(future)

    def running(self) -> list[asyncio.Future[None]]:
        """The ticks being written (APScheduler's shutdown cancels them without waiting)."""
        return list(self._pending_futures)


class RunReconciler:
    """Finishes runs whose deliveries are done, every ``SCHEDULER_RECONCILE_SECONDS``.

    Any number may run at once, in any process: a run is finished by exactly one of them
    (:func:`service.reconcile`). With no running run, one tick costs one indexed query.
    """

    def __init__(
        self,
        settings: SchedulerSettings,
        *,
        clock: Clock = utcnow,
        then: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.then = then
        """Run after each check (the scheduler measures the freshness there)."""
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the loop on the running event loop."""
        if self._task is None:
            self._task = asyncio.create_task(self._forever(), name="scheduler.reconcile")

    async def stop(self) -> None:
        """Stop the loop (a reconcile in progress rolls back; another process finishes it)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _forever(self) -> None:
        while True:
            try:
                await service.reconcile(now=self.clock())
            except Exception:
                logger.exception("reconciling runs failed; trying again")
            if self.then is not None:
                await self.then()
            await asyncio.sleep(self.settings.reconcile_seconds)


class Scheduler:
    """Fires the jobs' crons (APScheduler) and finishes runs whose deliveries are done.

    Args:
        jobs: the modules' jobs.
        settings: ``SCHEDULER_*``.
        clock: the current time (tests drive ticks with their own).
    """

    def __init__(
        self, jobs: Sequence[JobSpec], settings: SchedulerSettings, *, clock: Clock = utcnow
    ) -> None:
        self.jobs = {job.id: job for job in jobs}
        self.settings = settings
        self.clock = clock
        self.triggers = job_triggers(jobs, settings)
        self.zone = ZoneInfo(settings.timezone)
        self._aps: AsyncIOScheduler | None = None
        self._reconciler = RunReconciler(settings, clock=clock, then=self._measure_freshness)
        self._freshness_measured = -math.inf
        self._executor = _TickExecutor()

    def start(self) -> None:
        """Register every job with APScheduler and start it, and the reconcile loop."""
        aps = AsyncIOScheduler(
            event_loop=asyncio.get_running_loop(),
            timezone=self.zone,
            executors={"default": self._executor},
            # Coalescing and misfires are ours: every due tick reaches fire(), which records a
            # late one as missed. Ticks may overlap (a long fan-out): users in flight are skipped.
            job_defaults={"coalesce": False, "misfire_grace_time": None, "max_instances": 16},
        )
        for job_id, trigger in self.triggers.items():
            aps.add_job(self._on_due, trigger, args=(job_id,), id=job_id, name=job_id)
        aps.start()
        self._aps = aps
        self._reconciler.start()
        for job_id in self.triggers:
            logger.info("job %s: next run at %s", job_id, self.next_run_at(job_id))

    async def stop(self) -> None:
        """Stop firing and reconciling; a tick being written is cancelled (its transaction
        rolls back, or its run is already committed and its fan-out is in the outbox)."""
        if self._aps is not None:
            running = self._executor.running()
            self._aps.shutdown(wait=False)
            for future in running:
                future.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            self._aps = None
        await self._reconciler.stop()

    def next_run_at(self, job_id: str) -> datetime | None:
        """Return when the job fires next (from APScheduler once started)."""
        if self._aps is not None:
            job = self._aps.get_job(job_id)
            moment = job.next_run_time if job is not None else None
            return moment.astimezone(UTC) if moment is not None else None
        return next_run_at(self.triggers[job_id], self.clock())

    async def _on_due(self, job_id: str, *, run_times: tuple[datetime, ...] = ()) -> None:
        for scheduled_for in run_times:
            try:
                await self.fire(job_id, scheduled_for)
            except Exception:
                logger.exception("tick %s of job %s failed", scheduled_for, job_id)

    async def fire(
        self, job_id: str, scheduled_for: datetime, *, now: datetime | None = None
    ) -> list[str]:
        """Run one tick: insert a run row per organisation, or a ``missed`` one when late.

        Returns:
            The ids of the runs this process inserted (the others were taken by another one).
        """
        with tracing.span(f"tick {job_id}", **{"workflow_hub.job": job_id}):
            return await self._fire(job_id, scheduled_for, now=now)

    async def _fire(
        self, job_id: str, scheduled_for: datetime, *, now: datetime | None
    ) -> list[str]:
        job = self.jobs[job_id]
        now = now or self.clock()
        scheduled_for = scheduled_for.astimezone(UTC)
        missed = (now - scheduled_for).total_seconds() > self.settings.misfire_grace_seconds
        async with session_scope(join=False) as session:
            organizations = await repository.organization_ids(session)
        started: list[str] = []
        for organization_id in organizations:
            async with session_scope(join=False) as session:
                run_id = await service.start_run(
                    session,
                    job=job,
                    organization_id=organization_id,
                    scheduled_for=scheduled_for,
                    triggered_by=TriggeredBy.SCHEDULE,
                    now=now,
                    missed=missed,
                )
            if run_id is not None:
                started.append(str(run_id))
        if missed:
            logger.warning(
                "tick %s of job %s came %.0f s late: recorded as missed",
                scheduled_for.isoformat(),
                job_id,
                (now - scheduled_for).total_seconds(),
            )
        elif started:
            logger.info(
                "tick %s of job %s: %d runs", scheduled_for.isoformat(), job_id, len(started)
            )
        return started

    async def _measure_freshness(self) -> None:
        if time.monotonic() - self._freshness_measured < metrics.FRESHNESS_REFRESH_SECONDS:
            return
        self._freshness_measured = time.monotonic()
        try:
            await self.refresh_freshness()
        except Exception:
            logger.exception("measuring the task sync freshness failed; trying again")

    async def refresh_freshness(self) -> float:
        """Set the freshness gauge to the worst organisation's task-sync freshness; return it."""
        found = await service.freshness_by_organization(now=self.clock())
        worst = max(found.values(), default=0.0)
        metrics.TASK_SYNC_FRESHNESS.set(worst)
        return worst

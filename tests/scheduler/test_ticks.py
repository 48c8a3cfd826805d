"""Ticks: once per organisation however many schedulers fire them; late ticks are missed."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from app.contracts.scheduler import JobRunStarted
from app.core.db import session_scope
from app.core.settings import Settings
from app.events.outbox.models import OutboxEvent
from app.events.testing import capture_events
from app.scheduler import service
from app.scheduler.catalog import registered_jobs
from app.scheduler.engine import Scheduler
from app.scheduler.models import JobRun
from tests.factories import create_org, create_user, settle
from tests.scheduler.conftest import TaskSyncs

START = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
PERIOD = timedelta(minutes=5)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def runs() -> list[JobRun]:
    async with session_scope() as session:
        query = select(JobRun).order_by(JobRun.scheduled_for, JobRun.organization_id)
        return list((await session.scalars(query)).all())


async def test_three_schedulers_run_each_tick_once_per_organisation(
    app: FastAPI, settings: Settings, task_syncs: TaskSyncs
) -> None:
    organizations = [await create_org(), await create_org()]
    for organization_id in organizations:
        await create_user(organization_id)
    clock = Clock(START)
    schedulers = [Scheduler(registered_jobs(), settings.scheduler, clock=clock) for _ in range(3)]
    started: list[str] = []
    for tick in range(10):
        scheduled_for = START + tick * PERIOD
        clock.now = scheduled_for + timedelta(milliseconds=50)
        # The three instances wake up for the same tick at the same moment.
        results = await asyncio.gather(
            *(scheduler.fire("task_sweep", scheduled_for) for scheduler in schedulers)
        )
        started.extend(run_id for result in results for run_id in result)

    found = await runs()
    assert len(found) == len(started) == 10 * len(organizations)
    per_tick = {(run.scheduled_for, run.organization_id) for run in found}
    assert len(per_tick) == 10 * len(organizations)
    assert {run.triggered_by for run in found} == {"schedule"}
    # Exactly one fan-out per run was asked for.
    async with session_scope() as session:
        fan_outs = await session.scalar(
            select(func.count())
            .select_from(OutboxEvent)
            .where(OutboxEvent.name == JobRunStarted.name)
        )
    assert fan_outs == len(found)
    await settle(app)
    await service.reconcile()
    assert {run.status for run in await runs()} == {"succeeded"}


async def test_a_late_tick_is_missed_and_never_run(
    app: FastAPI, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings.scheduler, "misfire_grace_seconds", 30.0)
    organization_id = await create_org()
    await create_user(organization_id)
    clock = Clock(START + timedelta(seconds=31))
    scheduler = Scheduler(registered_jobs(), settings.scheduler, clock=clock)
    with capture_events(app.state.emitter) as captured:
        await scheduler.fire("task_sweep", START)
        # Another instance reaching the same tick in time does not run it either.
        await scheduler.fire("task_sweep", START, now=START + timedelta(seconds=1))
    assert captured.of(JobRunStarted) == []
    [run] = await runs()
    assert (run.status, run.users, run.scheduled_for) == ("missed", 0, START)
    assert run.finished_at == run.started_at == START + timedelta(seconds=31)

    # The next tick, on time, runs.
    clock.now = START + PERIOD + timedelta(seconds=29)
    await scheduler.fire("task_sweep", START + PERIOD)
    assert [run.status for run in await runs()] == ["missed", "running"]


async def test_a_scheduler_started_mid_period_waits_for_the_next_tick(
    app: FastAPI, settings: Settings
) -> None:
    organization_id = await create_org()
    scheduler = Scheduler(registered_jobs(), settings.scheduler)
    scheduler.start()
    try:
        before = datetime.now(UTC)
        next_run = scheduler.next_run_at("task_sweep")
        assert next_run is not None
        assert before < next_run <= before + PERIOD
        assert next_run.minute % 5 == 0
        assert next_run.second == 0
        friday = scheduler.next_run_at("profile_sync")
        assert friday is not None
        assert friday.weekday() == 4
        assert friday.hour == 6
        await asyncio.sleep(0.1)
        assert await runs() == []  # the tick it missed is not fired

        # APScheduler hands the tick's time to fire(): the row names the tick, not the moment.
        due = datetime.now(UTC).replace(microsecond=0)
        assert scheduler._aps is not None
        scheduler._aps.modify_job("task_sweep", next_run_time=due)
        for _ in range(100):
            if await runs():
                break
            await asyncio.sleep(0.05)
        [run] = await runs()
        assert (run.organization_id, run.scheduled_for, run.status) == (
            organization_id,
            due,
            "running",
        )
    finally:
        await scheduler.stop()


@pytest.mark.usefixtures("no_relay")
async def test_a_fan_out_killed_mid_sweep_resumes_and_queues_nobody_twice(
    app: FastAPI,
    settings: Settings,
    task_syncs: TaskSyncs,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(settings.scheduler, "page_size", 2)
    organization_id = await create_org()
    users = sorted([(await create_user(organization_id)).user_id for _ in range(5)])
    clock = Clock(START)
    scheduler = Scheduler(registered_jobs(), settings.scheduler, clock=clock)
    [run_id] = await scheduler.fire("task_sweep", START)
    job = scheduler.jobs["task_sweep"]
    assert job.fan_out is not None
    real_page = job.fan_out
    pages = 0

    async def dies_on_the_second_page(*args: object) -> object:
        nonlocal pages
        pages += 1
        if pages == 2:
            raise asyncio.CancelledError  # the process is killed while writing page 2
        return await real_page(*args)  # type: ignore[arg-type]

    from dataclasses import replace

    with pytest.raises(asyncio.CancelledError):
        await service.fan_out(
            run_id=uuid.UUID(run_id),
            job=replace(job, fan_out=dies_on_the_second_page),  # type: ignore[arg-type]
            page_size=2,
        )
    [run] = await runs()
    assert (run.users, run.cursor, run.fanned_out) == (2, str(users[1]), False)

    # The relay's retry of the fan-out resumes after the cursor; then the deliveries drain.
    await settle(app)
    await service.reconcile()
    [run] = await runs()
    assert (run.status, run.users, run.skipped, run.failures) == ("succeeded", 5, 0, 0)
    assert sorted(task_syncs.seen) == users  # one delivery each, nobody twice
    async with session_scope() as session:
        stored = await session.scalar(
            select(func.count())
            .select_from(OutboxEvent)
            .where(OutboxEvent.name == "user.sync.task.notifications")
        )
    assert stored == 5


@pytest.mark.usefixtures("no_relay")
async def test_a_user_whose_last_sync_is_still_running_is_not_queued_again(
    app: FastAPI, settings: Settings, task_syncs: TaskSyncs
) -> None:
    organization_id = await create_org()
    slow = await create_user(organization_id)
    clock = Clock(START)
    scheduler = Scheduler(registered_jobs(), settings.scheduler, clock=clock)
    [first] = await scheduler.fire("task_sweep", START)
    job = scheduler.jobs["task_sweep"]
    # The first tick's fan-out wrote its events, but no relay has delivered them yet.
    await service.fan_out(run_id=uuid.UUID(first), job=job, page_size=100)
    fast = await create_user(organization_id)  # joined meanwhile

    clock.now = START + PERIOD
    [second] = await scheduler.fire("task_sweep", START + PERIOD)
    await service.fan_out(run_id=uuid.UUID(second), job=job, page_size=100)
    await settle(app)
    await service.reconcile()
    by_id = {str(run.id): run for run in await runs()}
    assert (by_id[first].users, by_id[first].skipped, by_id[first].status) == (1, 0, "succeeded")
    assert (by_id[second].users, by_id[second].skipped, by_id[second].status) == (
        1,
        1,
        "succeeded",
    )
    assert sorted(task_syncs.seen) == sorted([slow.user_id, fast.user_id])


def test_a_six_field_cron_counts_seconds() -> None:
    from app.core.crontab import InvalidSchedule, check_crontab

    trigger = check_crontab("SCHEDULER_TASK_SWEEP_CRON", "*/2 * * * * *")
    moment = datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC)
    assert trigger.get_next_fire_time(None, moment) == datetime(2026, 1, 1, 0, 0, 2, tzinfo=UTC)
    with pytest.raises(InvalidSchedule, match="SCHEDULER_TASK_SWEEP_CRON"):
        check_crontab("SCHEDULER_TASK_SWEEP_CRON", "61 * * * * *")

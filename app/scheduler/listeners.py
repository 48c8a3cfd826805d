"""The scheduler's durable listener: a run's fan-out runs in a relay, with retries."""

from __future__ import annotations

from app.contracts.scheduler import JobRunStarted
from app.core.settings import get_settings
from app.events import DoNotRetry, RetryPolicy, current_delivery, listener
from app.scheduler import service
from app.scheduler.catalog import get_job

FAN_OUT_RETRY = RetryPolicy(max_attempts=8, base_delay=2.0, max_delay=120.0)


@listener(
    JobRunStarted,
    delivery="durable",
    listener_id="scheduler.run.fan_out",
    retry=FAN_OUT_RETRY,
)
async def when_job_run_started_fan_out(event: JobRunStarted) -> None:
    # A retry after a crash resumes after the run's cursor; the events of a page written twice
    # are stored once (their dedupe key names the run and the user).
    job = get_job(event.job_id)
    if job is None:
        await service.fail_run(run_id=event.run_id, error=f"no job {event.job_id!r} is declared")
        raise DoNotRetry(f"no job {event.job_id!r} is declared")
    try:
        await service.fan_out(
            run_id=event.run_id, job=job, page_size=get_settings().scheduler.page_size
        )
    except Exception as exc:
        delivery = current_delivery()
        if delivery is None or delivery.attempt >= FAN_OUT_RETRY.max_attempts:
            await service.fail_run(run_id=event.run_id, error=f"{type(exc).__name__}: {exc}")
        raise

"""Every metric series of the scheduler, named in one place.

``job`` is a job id declared by a module (``task_sweep``, ``profile_sync``) and ``status`` a run
status (``succeeded``, ``partial``, ``failed``, ``missed``): both fixed by the code.

**Freshness has no organisation label.** The gauge is the worst organisation's figure: the age
of the oldest last successful task sync among the users of the latest finished sweep, the
number the inbox promises to keep under twice the sweep period. One series, so the alert is one
comparison; which organisation is behind is on ``GET /api/v1/admin/jobs`` and the console (per
organisation, for its admins). It is refreshed by the scheduler process every
``FRESHNESS_REFRESH_SECONDS`` (one indexed query per organisation), never per scrape, and is 0
until a sweep has finished.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

JOB_RUNS = Counter(
    "workflow_hub_job_runs_total",
    "Job runs finished, by job and status (succeeded, partial, failed, missed).",
    ["job", "status"],
)
JOB_RUN_DURATION = Histogram(
    "workflow_hub_job_run_duration_seconds",
    "Time from a run's start to its end (its fan-out and every delivery of it), by job.",
    ["job"],
    buckets=(1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0),
)
TASK_SYNC_FRESHNESS = Gauge(
    "workflow_hub_task_sync_freshness_seconds",
    "Age of the oldest user's last successful task sync, in the worst organisation (0 until "
    "a sweep has finished).",
)
FRESHNESS_REFRESH_SECONDS = 30.0
"""How often the scheduler process refreshes the freshness gauge."""


def run_finished(job_id: str, status: str, seconds: float) -> None:
    """Count one finished run."""
    JOB_RUNS.labels(job_id, status).inc()
    JOB_RUN_DURATION.labels(job_id).observe(max(0.0, seconds))

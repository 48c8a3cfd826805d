"""The jobs this process knows: the modules' ``ModuleSpec.jobs``, installed by the composition
root (``build_emitter``), so the scheduler never imports a module."""

from __future__ import annotations

from collections.abc import Iterable

from app.core.modules import JobSpec

_jobs: dict[str, JobSpec] = {}


def install_jobs(jobs: Iterable[JobSpec]) -> None:
    """Make ``jobs`` the process's jobs (a duplicate id is a programming error)."""
    found: dict[str, JobSpec] = {}
    for job in jobs:
        if job.id in found:
            raise ValueError(f"two jobs are declared with the id {job.id!r}")
        found[job.id] = job
    _jobs.clear()
    _jobs.update(found)


def registered_jobs() -> list[JobSpec]:
    """Return every installed job, in declaration order."""
    return list(_jobs.values())


def get_job(job_id: str) -> JobSpec | None:
    return _jobs.get(job_id)

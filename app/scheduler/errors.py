"""Errors of the scheduler's API and commands."""

from __future__ import annotations

from app.core.errors import AppError, NotFound


class JobNotFound(NotFound):
    code = "job_not_found"
    detail = "No job has this id."


class RunNotFound(NotFound):
    code = "run_not_found"
    detail = "No run of this job has this id in your organisation."


class JobRunning(AppError):
    status = 409
    code = "job_running"
    detail = "A run of this job is already in progress for your organisation."

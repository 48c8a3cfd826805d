"""Errors of the hr module."""

from __future__ import annotations

from app.core.errors import NotFound


class WorkerNotFound(NotFound):
    code = "worker_not_found"
    detail = "Oracle Fusion HCM knows no worker with your person number or username."

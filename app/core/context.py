"""Request and pipeline context carried through contextvars (survives ``asyncio.create_task``)."""

from __future__ import annotations

import uuid
from contextvars import ContextVar

correlation_id_var: ContextVar[str | None] = ContextVar("correlation_id", default=None)


def new_correlation_id() -> str:
    """Return a fresh correlation id."""
    return uuid.uuid4().hex


def get_correlation_id() -> str | None:
    """Return the correlation id of the current request or pipeline, if any."""
    return correlation_id_var.get()

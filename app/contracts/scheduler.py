"""Events published by the scheduler (``app/scheduler``)."""

from __future__ import annotations

import uuid
from typing import ClassVar

from app.events import Event


class JobRunStarted(Event):
    """A run of a job started for one organisation; its fan-out runs durably, in a relay.

    Written in the transaction that inserted the run row, so a run that exists always gets its
    fan-out, and a crash in the middle resumes from the run's cursor on the relay's retry.
    """

    name: ClassVar[str] = "scheduler.run.started"

    run_id: uuid.UUID
    job_id: str

    def dedupe_key(self) -> str:
        return f"scheduler.run:{self.run_id}"

"""The shape of a domain module, as listed in ``app/registry.py``."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.security import SessionValidator
from app.core.tenancy import Organization

if TYPE_CHECKING:
    import typer

SeedHook = Callable[[AsyncSession, Organization], Awaitable[None]]


class Publishable(Protocol):
    """An event class a module publishes: an ``app.events.Event`` subclass (core can't name it)."""

    name: ClassVar[str]


@dataclass(frozen=True, slots=True)
class JobContext:
    """What one run of a job is about: the scheduler passes it to the job's functions.

    Attributes:
        job_id: the job's id (``task_sweep``).
        run_id: the run row's id; events a run publishes carry it, so each is stored once.
        organization_id: the one organisation this run works for.
        scheduled_for: the tick this run is for (the moment an admin asked, for a manual run).
        triggered_by: ``schedule`` or ``admin``.
    """

    job_id: str
    run_id: uuid.UUID
    organization_id: uuid.UUID
    scheduled_for: datetime
    triggered_by: str


@dataclass(frozen=True, slots=True)
class FanOutItem:
    """One subject of a fan-out (a user) and the durable event that asks for its work.

    ``key`` orders the subjects (keyset paging resumes after the last key written), and the
    event's ``dedupe_key()`` must be set (from the run id and the key), so a page written twice
    after a crash still stores each event once.
    """

    key: str
    event: Any
    """An ``app.events.Event`` (``app.core`` does not import the emitter)."""


FanOutPage = Callable[[AsyncSession, JobContext, str | None, int], Awaitable[Sequence[FanOutItem]]]
"""Return the next page of at most ``limit`` items after key ``after`` (None: from the start),
in ascending key order, for the run's organisation. It only reads: the scheduler publishes."""

JobFunction = Callable[[AsyncSession, JobContext], Awaitable[None]]
"""A job that does its work in one transaction (pruning, for example)."""


@dataclass(frozen=True, slots=True)
class JobSpec:
    """A scheduled job a module contributes; the scheduler registers it, once per organisation.

    A job either fans out (``fan_out``: the scheduler pages through it and writes each item's
    event as durable deliveries, one transaction a page, and the run finishes when those
    deliveries are done) or runs once (``run``: in one transaction).

    Attributes:
        id: a stable id, used by the API, the CLI and the run rows (``task_sweep``).
        cron: returns the five-field crontab expression, usually from a setting (read when
            the scheduler starts, never at import).
        cron_setting: the name of that setting, for the one-line refusal when it does not parse.
        description: one line for ``jobs list`` and ``GET /admin/jobs``.
    """

    id: str
    cron: Callable[[], str]
    cron_setting: str
    description: str = ""
    fan_out: FanOutPage | None = None
    run: JobFunction | None = None

    def __post_init__(self) -> None:
        if (self.fan_out is None) == (self.run is None):
            raise TypeError(f"job {self.id!r} needs exactly one of fan_out and run")


@dataclass(frozen=True, slots=True)
class ModuleSpec:
    """Everything a module contributes to the application. Importing it has no side effects.

    Attributes:
        name: the module's name (``auth``, ``user``...).
        router: its REST routes, mounted under ``/api/v1``.
        publishes: the event classes it publishes: every event of ``app/contracts/<name>.py``
            and nothing else (checked when the emitter is built, and by ``publish()``).
        listeners: functions decorated with ``@listener``, subscribed by ``create_app()``.
        jobs: scheduled jobs.
        seed_demo: an idempotent hook that adds the module's demo data to the demo organisation.
        cli: a Typer app mounted as ``python -m app <name> ...``.
        extra_cli: further top-level command groups by name (``python -m app org ...``).
        session_validator: checks each request's token against its session (the auth module
            provides it; at most one module may).
    """

    name: str
    router: APIRouter | None = None
    publishes: Sequence[type[Publishable]] = field(default_factory=tuple)
    listeners: Sequence[Callable[..., Any]] = field(default_factory=tuple)
    jobs: Sequence[JobSpec] = field(default_factory=tuple)
    seed_demo: SeedHook | None = None
    cli: typer.Typer | None = None
    cli_name: str | None = None
    extra_cli: Mapping[str, typer.Typer] = field(default_factory=dict)
    session_validator: SessionValidator | None = None

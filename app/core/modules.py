"""The shape of a domain module, as listed in ``app/registry.py``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.security import SessionValidator
from app.core.tenancy import Organization

if TYPE_CHECKING:
    import typer

SeedHook = Callable[[AsyncSession, Organization], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class JobSpec:
    """A scheduled job a module contributes; the scheduler registers it."""

    id: str
    func: Callable[[], Awaitable[Any]]
    cron: str
    """A crontab expression (five fields), usually taken from a setting."""
    description: str = ""


@dataclass(frozen=True, slots=True)
class ModuleSpec:
    """Everything a module contributes to the application. Importing it has no side effects.

    Attributes:
        name: the module's name (``auth``, ``user``...).
        router: its REST routes, mounted under ``/api/v1``.
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
    listeners: Sequence[Callable[..., Any]] = field(default_factory=tuple)
    jobs: Sequence[JobSpec] = field(default_factory=tuple)
    seed_demo: SeedHook | None = None
    cli: typer.Typer | None = None
    cli_name: str | None = None
    extra_cli: Mapping[str, typer.Typer] = field(default_factory=dict)
    session_validator: SessionValidator | None = None

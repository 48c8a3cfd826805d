"""The overview: the organisation's pipeline at a glance, refreshing itself every few seconds.

Each figure comes from the service the admin API uses. A figure whose source is not built yet
says so ("not available") instead of guessing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.console.security import ConsoleAdmin
from app.console.views import render
from app.core.db import DbSession, utcnow
from app.core.security import Principal
from app.core.settings import get_settings
from app.events.outbox import service as outbox
from app.events.outbox.models import DeliveryStatus
from app.integrations.runtime import Integrations
from app.modules.notification import service as notifications
from app.scheduler import queries as scheduler

router = APIRouter()

INTEGRATIONS = ("oracle_fusion", "yardi")
SWEEP_JOB = "task_sweep"
"""The job whose freshness is the inboxes' (the age of the oldest user's last task sync)."""


@dataclass(frozen=True, slots=True)
class Breaker:
    """One integration's breaker for the organisation, in this process."""

    integration: str
    state: str
    failures: int


async def outbox_figures(session: AsyncSession, organization_id: uuid.UUID) -> dict[str, int]:
    """Deliveries of the organisation waiting, running and dead."""
    figures: dict[str, int] = {}
    for status in (DeliveryStatus.PENDING, DeliveryStatus.RUNNING, DeliveryStatus.DEAD):
        page = await outbox.list_deliveries(
            session, status=status, organization_id=organization_id, limit=1
        )
        figures[status.value] = page.total
    return figures


def breakers(request: Request, organization_id: uuid.UUID) -> list[Breaker]:
    """The organisation's breakers in this process (closed until a call has failed)."""
    integrations = getattr(request.app.state, "integrations", None)
    if not isinstance(integrations, Integrations):
        return []
    tenant = str(organization_id)
    registry = integrations.breakers
    known = registry.states()
    shown = []
    for name in INTEGRATIONS:
        if (name, tenant) in known:
            breaker = registry.get(name, tenant)
            shown.append(Breaker(name, breaker.state.value, breaker.failures))
        else:
            shown.append(Breaker(name, "closed", 0))
    return shown


async def _figures(request: Request, session: AsyncSession, admin: Principal) -> dict[str, Any]:
    jobs = await scheduler.list_jobs(
        session,
        organization_id=admin.organization_id,
        settings=get_settings().scheduler,
        now=utcnow(),
    )
    sweep = next((job for job in jobs.items if job.id == SWEEP_JOB), None)
    return {
        "outbox": await outbox_figures(session, admin.organization_id),
        "breakers": breakers(request, admin.organization_id),
        "pushes": await notifications.push_totals(
            session, organization_id=admin.organization_id, since=utcnow() - timedelta(hours=1)
        ),
        "jobs": jobs.items,
        "sweep": sweep,
    }


@router.get("", response_class=Response)
async def overview(request: Request, admin: ConsoleAdmin, session: DbSession) -> Response:
    """The overview page."""
    figures = await _figures(request, session, admin)
    return render(request, "overview.html", admin=admin, page="overview", **figures)


@router.get("/overview/live", response_class=Response)
async def overview_live(request: Request, admin: ConsoleAdmin, session: DbSession) -> Response:
    """The overview's figures alone, for the page's refresh script."""
    figures = await _figures(request, session, admin)
    return render(request, "_overview.html", admin=admin, **figures)

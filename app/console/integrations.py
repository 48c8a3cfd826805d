"""Integrations: each connection's settings (secrets only as set or not), a live check, errors.

The settings come from the connections service the admin API uses; "test connection" makes one
cheap read through the same client the pipelines use (so it goes through the breaker and the
limits, and a failure counts like any other); the breaker and its recent failures (what the
resilient transport recorded) are this process's.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.console.overview import Breaker, breakers
from app.console.security import ConsoleAdmin, CsrfAdmin
from app.console.views import render
from app.core.db import DbSession
from app.core.errors import AppError
from app.core.security import Principal
from app.integrations.connections.crypto import SecretsUnreadable
from app.integrations.connections.schemas import ConnectionView, IntegrationKind
from app.integrations.connections.service import IntegrationNotConfigured, describe_connection
from app.integrations.errors import IntegrationError, NotFoundError
from app.integrations.runtime import Integrations
from app.integrations.transport.breaker import Failure

router = APIRouter()

Kind = Annotated[IntegrationKind, Path(description="The integration.")]


@dataclass(frozen=True, slots=True)
class Check:
    """The outcome of one test call."""

    ok: bool
    message: str
    seconds: float


@dataclass(frozen=True, slots=True)
class IntegrationPanel:
    kind: str
    view: ConnectionView | None
    problem: str | None
    breaker: Breaker | None
    failures: list[Failure]
    """This process's latest failed calls for the organisation, newest first."""


def _integrations(request: Request) -> Integrations | None:
    integrations = getattr(request.app.state, "integrations", None)
    return integrations if isinstance(integrations, Integrations) else None


async def _panel(
    request: Request, session: AsyncSession, organization_id: uuid.UUID, kind: IntegrationKind
) -> IntegrationPanel:
    view: ConnectionView | None = None
    problem: str | None = None
    try:
        view = await describe_connection(session, organization_id=organization_id, kind=kind)
    except (IntegrationNotConfigured, SecretsUnreadable) as exc:
        problem = exc.detail
    breaker = next((b for b in breakers(request, organization_id) if b.integration == kind), None)
    integrations = _integrations(request)
    failures = (
        integrations.breakers.recent_failures(kind.value, str(organization_id))
        if integrations is not None
        else []
    )
    return IntegrationPanel(kind.value, view, problem, breaker, failures)


async def _page(
    request: Request,
    session: AsyncSession,
    admin: Principal,
    *,
    checked: tuple[str, Check] | None = None,
) -> Response:
    panels = [
        await _panel(request, session, admin.organization_id, kind) for kind in IntegrationKind
    ]
    integrations = _integrations(request)
    return render(
        request,
        "integrations.html",
        admin=admin,
        page="integrations",
        panels=panels,
        push_provider=integrations.push.name if integrations is not None else None,
        checked=checked,
    )


@router.get("/integrations", response_class=Response)
async def integrations(request: Request, admin: ConsoleAdmin, session: DbSession) -> Response:
    """Every integration of the organisation."""
    return await _page(request, session, admin)


async def probe(
    integrations: Integrations, session: AsyncSession, organization_id: uuid.UUID, kind: str
) -> None:
    """Make one cheap read: the first page of Oracle's worklist, or the pending approvals of
    Yardi's interface user (Yardi may answer that it does not know them: it answered)."""
    if kind == IntegrationKind.ORACLE_FUSION:
        oracle = await integrations.oracle_fusion(session, organization_id=organization_id)
        async for _task in oracle.iter_tasks():
            break
    else:
        yardi = await integrations.yardi(session, organization_id=organization_id)
        await yardi.pending_approvals(approver=yardi.credentials.username)


@router.post("/integrations/{kind}/test", response_class=Response)
async def test_connection(
    request: Request, kind: Kind, admin: CsrfAdmin, session: DbSession
) -> Response:
    """Call the integration once now and say whether it answered."""
    integrations = _integrations(request)
    started = time.monotonic()
    outcome: Any
    if integrations is None:
        outcome = Check(False, "The integrations are not open in this process.", 0.0)
    else:
        try:
            await probe(integrations, session, admin.organization_id, kind)
        except NotFoundError as exc:
            # It answered, with our credentials: only the thing asked about is unknown there.
            outcome = Check(True, f"It answered ({exc.detail}).", time.monotonic() - started)
        except IntegrationError as exc:
            status = f" (HTTP {exc.status})" if exc.status else ""
            outcome = Check(False, f"{exc.kind}{status}: {exc.detail}", time.monotonic() - started)
        except AppError as exc:
            outcome = Check(False, exc.detail, time.monotonic() - started)
        else:
            outcome = Check(True, "It answered.", time.monotonic() - started)
    return await _page(request, session, admin, checked=(kind.value, outcome))

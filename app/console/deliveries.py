"""Deliveries: filter, inspect a dead letter, retry or discard it (confirmed), replay a window.

Every call goes to the outbox service the admin API uses, scoped to the admin's organisation:
another organisation's delivery answers 404 here exactly as there.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Path, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError

from app.console.security import ConsoleAdmin, CsrfAdmin
from app.console.views import render
from app.core.db import DbSession, utcnow
from app.core.errors import AppError
from app.core.security import Principal
from app.events.app_emitter import AppEmitter
from app.events.outbox import service as outbox
from app.events.outbox.models import DeliveryStatus
from app.events.outbox.schemas import MAX_BIGINT, ReplayRequest

router = APIRouter()

PAGE_SIZE = 50
DeliveryId = Annotated[int, Path(ge=1, le=MAX_BIGINT)]
Action = Literal["retry", "discard"]
STATUSES = [status.value for status in DeliveryStatus]
NOTICES = {
    "retry": "The delivery is queued again with a fresh attempt budget.",
    "discard": "The delivery is discarded.",
}


class InvalidFilter(AppError):
    status = 422
    code = "invalid_filter"
    detail = "Unknown delivery status."


def _emitter(request: Request) -> AppEmitter | None:
    emitter = getattr(request.app.state, "emitter", None)
    return emitter if isinstance(emitter, AppEmitter) else None


def _listeners(request: Request) -> list[str]:
    emitter = _emitter(request)
    return sorted(emitter.durable_listeners()) if emitter is not None else []


async def _list_page(
    request: Request,
    admin: Principal,
    session: DbSession,
    *,
    status: str | None,
    listener: str | None,
    offset: int,
    status_code: int = 200,
    replay_error: str | None = None,
    replayed: int | None = None,
    replay_form: dict[str, str] | None = None,
) -> Response:
    if status and status not in STATUSES:
        raise InvalidFilter(f"Unknown delivery status {status!r}; one of {', '.join(STATUSES)}.")
    page = await outbox.list_deliveries(
        session,
        status=status or None,
        listener_id=listener or None,
        organization_id=admin.organization_id,
        limit=PAGE_SIZE,
        offset=offset,
        emitter=_emitter(request),
    )
    return render(
        request,
        "deliveries.html",
        status_code=status_code,
        admin=admin,
        page="deliveries",
        deliveries=page,
        statuses=STATUSES,
        listeners=_listeners(request),
        status=status or "",
        listener=listener or "",
        page_size=PAGE_SIZE,
        replay_error=replay_error,
        replayed=replayed,
        replay_form=replay_form or {},
    )


@router.get("/deliveries", response_class=Response)
async def deliveries(
    request: Request,
    admin: ConsoleAdmin,
    session: DbSession,
    status: Annotated[str | None, Query(max_length=20)] = None,
    listener: Annotated[str | None, Query(max_length=255)] = None,
    offset: Annotated[int, Query(ge=0, le=MAX_BIGINT)] = 0,
    replayed: Annotated[int | None, Query(ge=0, le=MAX_BIGINT)] = None,
) -> Response:
    """The deliveries, newest first, filtered by status and listener."""
    return await _list_page(
        request,
        admin,
        session,
        status=status,
        listener=listener,
        offset=offset,
        replayed=replayed,
    )


@router.get("/deliveries/{delivery_id}", response_class=Response)
async def delivery(
    request: Request,
    delivery_id: DeliveryId,
    admin: ConsoleAdmin,
    session: DbSession,
    done: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    """One delivery: its event, attempts and errors, with retry and discard."""
    detail = await outbox.get_delivery(
        session, delivery_id, organization_id=admin.organization_id, emitter=_emitter(request)
    )
    return render(
        request,
        "delivery.html",
        admin=admin,
        page="deliveries",
        delivery=detail,
        notice=NOTICES.get(done or ""),
        can_retry=detail.status in ("dead", "discarded", "pending"),
        can_discard=detail.status in ("dead", "pending"),
    )


@router.get("/deliveries/{delivery_id}/{action}", response_class=Response)
async def confirm(
    request: Request,
    delivery_id: DeliveryId,
    action: Action,
    admin: ConsoleAdmin,
    session: DbSession,
) -> Response:
    """Ask before retrying or discarding a delivery."""
    detail = await outbox.get_delivery(
        session, delivery_id, organization_id=admin.organization_id, emitter=_emitter(request)
    )
    return render(
        request, "confirm.html", admin=admin, page="deliveries", delivery=detail, action=action
    )


@router.post("/deliveries/{delivery_id}/{action}", response_class=Response)
async def act(
    request: Request,
    delivery_id: DeliveryId,
    action: Action,
    admin: CsrfAdmin,
    session: DbSession,
) -> Response:
    """Retry or discard a delivery (after the confirmation page)."""
    operation = outbox.retry_delivery if action == "retry" else outbox.discard_delivery
    await operation(
        session,
        delivery_id,
        now=utcnow(),
        organization_id=admin.organization_id,
        emitter=_emitter(request),
    )
    return RedirectResponse(f"/console/deliveries/{delivery_id}?done={action}", status_code=303)


def _utc(value: str) -> datetime | None:
    """A ``datetime-local`` field (no zone) read as UTC; empty is None."""
    value = value.strip()
    if not value:
        return None
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@router.post("/replay", response_class=Response)
async def replay(
    request: Request,
    admin: CsrfAdmin,
    session: DbSession,
    listener_id: Annotated[str, Form(max_length=255)],
    since: Annotated[str, Form(max_length=40)],
    pattern: Annotated[str, Form(max_length=255)] = "**",
    until: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    """Queue the organisation's stored events of a window to one durable listener."""
    form = {"listener_id": listener_id, "pattern": pattern, "since": since, "until": until}
    try:
        body = ReplayRequest(
            pattern=pattern.strip() or "**",
            listener_id=listener_id,
            since=_utc(since),  # None is refused by the model
            until=_utc(until),
        )
    except (ValueError, ValidationError) as exc:
        message = _validation_message(exc)
        return await _list_page(
            request,
            admin,
            session,
            status=None,
            listener=None,
            offset=0,
            status_code=422,
            replay_error=message,
            replay_form=form,
        )
    emitter = _emitter(request)
    if emitter is None:
        raise outbox.UnknownListener("this process has no application emitter")
    try:
        result = await outbox.replay(
            session,
            emitter=emitter,
            pattern=body.pattern,
            listener_id=body.listener_id,
            since=body.since,
            until=body.until,
            now=utcnow(),
            organization_id=admin.organization_id,
        )
    except (outbox.UnknownListener, outbox.InvalidPattern) as exc:
        return await _list_page(
            request,
            admin,
            session,
            status=None,
            listener=None,
            offset=0,
            status_code=exc.status,
            replay_error=exc.detail,
            replay_form=form,
        )
    query = urlencode({"listener": result.listener_id, "replayed": result.queued})
    return RedirectResponse(f"/console/deliveries?{query}", status_code=303)


def _validation_message(exc: ValueError | ValidationError) -> str:
    if isinstance(exc, ValidationError):
        parts = []
        for error in exc.errors():
            where = ".".join(str(p) for p in error.get("loc", ())) or "window"
            parts.append(f"{where}: {error.get('msg', 'invalid')}")
        return "; ".join(parts)
    return f"Invalid time: {exc}"

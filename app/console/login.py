"""Logging in and out of the console, through the auth module's own login service."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse

from app.console.security import (
    LOGIN_NONCE_COOKIE,
    SESSION_COOKIE,
    SESSION_HOURS,
    CsrfAdmin,
    clear_cookie,
    csrf_matches,
    issue_session_token,
    new_login_nonce,
    set_cookie,
)
from app.console.views import render
from app.core.db import DbSession, own_transaction
from app.core.errors import AppError
from app.core.security import ADMIN, CurrentSettings, decode_access_token
from app.modules.auth import service as auth

router = APIRouter()

NONCE_MAX_AGE = 3600


def _next_page(value: str | None) -> str:
    """Only a console path is a place to return to after login (no open redirect)."""
    if value and value.startswith("/console") and "//" not in value and "\\" not in value:
        return value
    return "/console"


def _form(
    request: Request,
    settings: CurrentSettings,
    *,
    status_code: int = 200,
    error: str | None = None,
    email: str = "",
    next_page: str = "/console",
    ask_organization: bool = False,
) -> Response:
    nonce = request.cookies.get(LOGIN_NONCE_COOKIE) or new_login_nonce()
    response = render(
        request,
        "login.html",
        status_code=status_code,
        csrf_binding=nonce,
        error=error,
        email=email,
        next_page=next_page,
        ask_organization=ask_organization,
    )
    set_cookie(response, request, settings, LOGIN_NONCE_COOKIE, nonce, NONCE_MAX_AGE)
    return response


@router.get("/login", response_class=Response)
async def login_form(
    request: Request, settings: CurrentSettings, next: str | None = None
) -> Response:
    """The login form."""
    return _form(request, settings, next_page=_next_page(next))


@router.post("/login", response_class=Response)
async def log_in(
    request: Request,
    session: DbSession,
    settings: CurrentSettings,
    email: Annotated[str, Form(max_length=320)],
    password: Annotated[str, Form(max_length=1024)],
    csrf_token: Annotated[str | None, Form()] = None,
    organization_id: Annotated[str | None, Form(max_length=64)] = None,
    next: Annotated[str | None, Form(max_length=2048)] = None,
) -> Response:
    """Log an admin in with email and password; the session is an auth session."""
    next_page = _next_page(next)
    if not csrf_matches(settings.security, request.cookies.get(LOGIN_NONCE_COOKIE), csrf_token):
        return _form(
            request,
            settings,
            status_code=403,
            error="The form expired; please log in again.",
            email=email,
            next_page=next_page,
        )
    organization: uuid.UUID | None = None
    if organization_id and organization_id.strip():
        try:
            organization = uuid.UUID(organization_id.strip())
        except ValueError:
            return _form(
                request,
                settings,
                status_code=422,
                error="The organisation id is not a valid id.",
                email=email,
                next_page=next_page,
                ask_organization=True,
            )
    address = request.client.host if request.client else "unknown"
    try:
        # Counted exactly as the REST login counts it: in a short transaction of its own,
        # before the password is checked, so that a wrong guess stays counted.
        async with own_transaction() as own:
            attempt = await auth.count_login_attempt(
                own, security=settings.security, email=email, address=address
            )
        tokens = await auth.login(
            session,
            settings=settings,
            email=email,
            password=password,
            attempt=attempt,
            organization_id=organization,
        )
    except AppError as exc:
        if not exc.commit:  # as the request scope would: keep only what the error records
            await session.rollback()
        return _form(
            request,
            settings,
            status_code=exc.status,
            error=exc.detail,
            email=email,
            next_page=next_page,
            ask_organization=exc.code == "organization_required",
        )
    principal = decode_access_token(settings.security, tokens.access_token)
    if principal.role != ADMIN:
        # The console is for admins: the session this login opened is never committed (and
        # the attempt stays counted against the throttle, like a wrong password).
        await session.rollback()
        return _form(
            request,
            settings,
            status_code=403,
            error="The console is for organisation admins.",
            email=email,
            next_page=next_page,
        )
    response = RedirectResponse(next_page, status_code=303)
    token = issue_session_token(settings.security, principal)
    set_cookie(response, request, settings, SESSION_COOKIE, token, SESSION_HOURS * 3600)
    clear_cookie(response, LOGIN_NONCE_COOKIE)
    return response


@router.post("/logout", response_class=Response)
async def log_out(admin: CsrfAdmin, session: DbSession) -> Response:
    """End the console's session (the auth session it names)."""
    await auth.revoke_session(session, session_id=admin.session_id, reason="logout")
    response = RedirectResponse("/console/login", status_code=303)
    clear_cookie(response, SESSION_COOKIE)
    return response

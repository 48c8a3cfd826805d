"""The console's session cookie, its CSRF tokens, and the dependencies every page states.

Logging in goes through the auth module's login service, so the console's session IS an auth
session: the throttle, a password reset, a deactivated user and ``python -m app`` revocations
all end it. The cookie holds a signed token naming that session (``typ=console``, never usable
as a bearer token); each request checks it with the auth module's session validator, exactly as
the REST API checks a bearer token, and then requires an admin.

CSRF tokens are an HMAC of the session id (or, before login, of a random nonce kept in a cookie
of its own), keyed by the JWT secret: a form posted from another site carries none, and the
cookies are ``SameSite=Strict`` besides.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from datetime import timedelta
from typing import Annotated, Any

import jwt
from fastapi import Depends, Form, Request, Response

from app.core.db import DbSession, utcnow
from app.core.errors import AppError, Forbidden, Unauthorized
from app.core.security import (
    ADMIN,
    USER_TYPES,
    AdminRequired,
    Principal,
    SessionValidator,
    app_settings,
)
from app.core.settings import Environment, SecuritySettings, Settings

SESSION_COOKIE = "wfh_console"
LOGIN_NONCE_COOKIE = "wfh_console_login"
COOKIE_PATH = "/console"
SESSION_HOURS = 8
"""How long a console login lasts (never longer than the auth session it names)."""
TOKEN_TYPE = "console"


class ConsoleLoginRequired(AppError):
    """No live console session: pages redirect to the login form."""

    status = 401
    code = "console_login_required"
    detail = "Log in to the console."


class CsrfRefused(Forbidden):
    code = "csrf_refused"
    detail = "The form's CSRF token is missing or wrong; reload the page and try again."


# -- the session token ------------------------------------------------------------------------


def issue_session_token(security: SecuritySettings, principal: Principal) -> str:
    """Sign the cookie value naming ``principal``'s auth session."""
    now = utcnow()
    claims: dict[str, Any] = {
        "sub": str(principal.user_id),
        "org": str(principal.organization_id),
        "role": principal.role,
        "utype": principal.user_type,
        "sid": str(principal.session_id),
        "typ": TOKEN_TYPE,
        "iat": now,
        "exp": now + timedelta(hours=SESSION_HOURS),
    }
    key = security.jwt_secret.get_secret_value()
    return jwt.encode(claims, key, algorithm=security.jwt_algorithm)


def read_session_token(security: SecuritySettings, token: str) -> Principal:
    """Verify a cookie value and return whom it names.

    Raises:
        ConsoleLoginRequired: the value is missing, forged, expired or not a console token.
    """
    try:
        claims = jwt.decode(
            token,
            security.jwt_secret.get_secret_value(),
            algorithms=[security.jwt_algorithm],
            options={"require": ["sub", "org", "role", "utype", "sid", "typ", "exp"]},
        )
        if claims["typ"] != TOKEN_TYPE or claims["utype"] not in USER_TYPES:
            raise ConsoleLoginRequired()
        return Principal(
            user_id=uuid.UUID(claims["sub"]),
            organization_id=uuid.UUID(claims["org"]),
            role=str(claims["role"]),
            user_type=str(claims["utype"]),
            session_id=uuid.UUID(claims["sid"]),
        )
    except (jwt.InvalidTokenError, TypeError, ValueError, AttributeError):
        raise ConsoleLoginRequired() from None


def _secure(request: Request, settings: Settings) -> bool:
    return settings.app.env is Environment.PROD or request.url.scheme == "https"


def set_cookie(
    response: Response, request: Request, settings: Settings, name: str, value: str, max_age: int
) -> None:
    """Set one of the console's cookies: HTTP-only, ``SameSite=Strict``, scoped to /console."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=COOKIE_PATH,
        secure=_secure(request, settings),
        httponly=True,
        samesite="strict",
    )


def clear_cookie(response: Response, name: str) -> None:
    """Remove one of the console's cookies."""
    response.delete_cookie(name, path=COOKIE_PATH, httponly=True, samesite="strict")


# -- CSRF -------------------------------------------------------------------------------------


def csrf_token(security: SecuritySettings, binding: str) -> str:
    """Return the CSRF token of a session id (or of a login nonce)."""
    key = security.jwt_secret.get_secret_value().encode()
    return hmac.new(key, f"console-csrf:{binding}".encode(), hashlib.sha256).hexdigest()


def csrf_matches(security: SecuritySettings, binding: str | None, token: str | None) -> bool:
    """Tell whether ``token`` is the CSRF token of ``binding``, in constant time."""
    if not binding or not token:
        return False
    return hmac.compare_digest(csrf_token(security, binding), token)


def new_login_nonce() -> str:
    """A random value binding the login form's CSRF token to this browser."""
    return secrets.token_urlsafe(32)


# -- dependencies -----------------------------------------------------------------------------


async def console_admin(request: Request, session: DbSession) -> Principal:
    """FastAPI dependency: the console's caller, an admin of a live session.

    Raises:
        ConsoleLoginRequired: no cookie, or its session has ended (pages redirect to login).
        AdminRequired: the session's user is not (or no longer) an admin.
    """
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise ConsoleLoginRequired()
    settings = app_settings(request)
    principal = read_session_token(settings.security, token)
    validator: SessionValidator | None = getattr(request.app.state, "session_validator", None)
    if validator is None:
        raise RuntimeError("no session validator is installed; the auth module provides it")
    try:
        principal = await validator(session, principal)
    except Unauthorized:  # the session was revoked or has expired
        raise ConsoleLoginRequired() from None
    if principal.role != ADMIN:
        raise AdminRequired()
    request.state.console_principal = principal
    return principal


ConsoleAdmin = Annotated[Principal, Depends(console_admin)]
"""The console's caller: an admin of a live session; others see nothing of the organisation."""


async def checked_csrf(
    request: Request,
    admin: ConsoleAdmin,
    csrf_token_field: Annotated[str | None, Form(alias="csrf_token")] = None,
) -> Principal:
    """FastAPI dependency: an admin whose form carries this session's CSRF token.

    Raises:
        CsrfRefused: the token is missing or wrong.
    """
    settings = app_settings(request)
    if not csrf_matches(settings.security, str(admin.session_id), csrf_token_field):
        raise CsrfRefused()
    return admin


CsrfAdmin = Annotated[Principal, Depends(checked_csrf)]
"""An admin posting a console form that carries this session's CSRF token."""

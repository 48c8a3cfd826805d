"""Passwords, access tokens and the request principal, shared by every module.

Passwords are hashed with argon2id. Access tokens are short-lived JWTs carrying ``sub`` (the
user), ``org`` (the tenant), ``role``, ``utype`` (the user type), ``sid`` (the session), ``iat``,
``exp`` and ``jti``. Each request's token is checked against its session by a validator that the
auth module installs at build time (core knows no module), so a revoked session stops working at
once. Endpoints state their rule in one parameter: ``CurrentUser``, ``RequireAdmin`` or
``RequireEmployeeType`` (``CallerBriefly`` and ``CallerReading`` are ``CurrentUser`` for routes
that call far systems, and for routes that only read).
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Annotated, Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import Depends, FastAPI, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import DbSession, ReadSession, read_session, utcnow
from app.core.errors import AppError, Forbidden, Unauthorized
from app.core.settings import Environment, SecuritySettings, Settings

ROLES = ("employee", "admin")
USER_TYPES = ("EMPLOYEE", "CONTRACTOR", "EXTERNAL")
ADMIN = "admin"
EMPLOYEE_TYPE = "EMPLOYEE"

# -- errors -----------------------------------------------------------------------------------


class NotAuthenticated(Unauthorized):
    code = "not_authenticated"
    detail = "A bearer access token is required."


class TokenInvalid(Unauthorized):
    code = "token_invalid"
    detail = "The token is malformed, forged or not an access token."


class TokenExpired(Unauthorized):
    code = "token_expired"
    detail = "The token has expired."


class SessionRevoked(Unauthorized):
    code = "session_revoked"
    detail = "The session of this token has ended; log in again."


class AdminRequired(Forbidden):
    code = "admin_required"
    detail = "Only an organisation admin may do this."


class UserNotEmployee(AppError):
    status = 400
    code = "user_not_employee"
    detail = "Only EMPLOYEE users have an Oracle Fusion profile."


# -- passwords --------------------------------------------------------------------------------


@lru_cache(maxsize=8)
def _hasher(time_cost: int, memory_cost: int, parallelism: int) -> PasswordHasher:
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism)


def password_hasher(settings: Settings) -> PasswordHasher:
    """Return the argon2id hasher of these settings (minimal cost under ``APP_ENV=test``)."""
    if settings.app.env is Environment.TEST:
        return _hasher(1, 8, 1)
    security = settings.security
    return _hasher(
        security.argon2_time_cost, security.argon2_memory_cost_kib, security.argon2_parallelism
    )


def normalize_email(email: str) -> str:
    """Emails compare case-insensitively, so every module stores and looks them up this way."""
    return email.strip().lower()


def hash_password(settings: Settings, password: str) -> str:
    """Return the argon2id hash of ``password``; plaintext is never stored or published."""
    return password_hasher(settings).hash(password)


def verify_password(settings: Settings, password_hash: str | None, password: str) -> bool:
    """Tell whether ``password`` matches ``password_hash``.

    A missing hash still costs one verification, so timing does not tell whether an account
    exists.
    """
    hasher = password_hasher(settings)
    target = password_hash or _dummy_hash(hasher)
    try:
        matched = hasher.verify(target, password)
    except (VerificationError, InvalidHashError):
        return False
    return matched and password_hash is not None


def password_needs_rehash(settings: Settings, password_hash: str) -> bool:
    """Tell whether a stored hash was made with other parameters than the current ones."""
    return password_hasher(settings).check_needs_rehash(password_hash)


@lru_cache(maxsize=8)
def _dummy_hash(hasher: PasswordHasher) -> str:
    return hasher.hash("no account has this password")


# -- access tokens ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the user, their tenant, role, type and session."""

    user_id: uuid.UUID
    organization_id: uuid.UUID
    role: str
    user_type: str
    session_id: uuid.UUID

    @property
    def is_admin(self) -> bool:
        return self.role == ADMIN

    @property
    def is_employee_type(self) -> bool:
        return self.user_type == EMPLOYEE_TYPE

    def with_access(self, *, role: str, user_type: str) -> Principal:
        """Return this principal with its current role and type (as the session knows them)."""
        if role == self.role and user_type == self.user_type:
            return self
        return replace(self, role=role, user_type=user_type)


_REQUIRED_CLAIMS = ["sub", "org", "role", "utype", "sid", "iat", "exp"]


def create_access_token(
    security: SecuritySettings, principal: Principal, *, now: datetime | None = None
) -> tuple[str, int]:
    """Sign an access token for ``principal``.

    Args:
        security: the JWT secret, algorithm and lifetime.
        principal: the user and session the token speaks for.
        now: the issue time (defaults to the current time).

    Returns:
        The token and its lifetime in seconds.
    """
    issued = now or utcnow()
    ttl = security.access_token_ttl_seconds
    claims: dict[str, Any] = {
        "sub": str(principal.user_id),
        "org": str(principal.organization_id),
        "role": principal.role,
        "utype": principal.user_type,
        "sid": str(principal.session_id),
        "typ": "access",
        "iat": issued,
        "exp": issued + timedelta(seconds=ttl),
        "jti": uuid.uuid4().hex,
    }
    key = security.jwt_secret.get_secret_value()
    return jwt.encode(claims, key, algorithm=security.jwt_algorithm), ttl


def decode_access_token(security: SecuritySettings, token: str) -> Principal:
    """Verify an access token's signature, expiry and claims.

    Raises:
        TokenExpired: the token is past its ``exp``.
        TokenInvalid: the token is malformed, signed with another key, or lacks a claim.
    """
    return _decode(security, token)[0]


def _decode(security: SecuritySettings, token: str) -> tuple[Principal, float]:
    """The principal of a verified access token, and its ``exp`` (seconds since the epoch)."""
    try:
        claims = jwt.decode(
            token,
            security.jwt_secret.get_secret_value(),
            algorithms=[security.jwt_algorithm],
            options={"require": _REQUIRED_CLAIMS},
        )
    except jwt.ExpiredSignatureError as exc:
        raise TokenExpired() from exc
    except jwt.InvalidTokenError as exc:
        raise TokenInvalid() from exc
    try:
        principal = Principal(
            user_id=uuid.UUID(claims["sub"]),
            organization_id=uuid.UUID(claims["org"]),
            role=claims["role"],
            user_type=claims["utype"],
            session_id=uuid.UUID(claims["sid"]),
        )
    except (TypeError, ValueError, AttributeError) as exc:
        raise TokenInvalid() from exc
    if claims.get("typ") != "access" or principal.role not in ROLES:
        raise TokenInvalid()
    if principal.user_type not in USER_TYPES:
        raise TokenInvalid()
    return principal, float(claims["exp"])


class VerifiedTokens:
    """The access tokens verified lately, so a client's next requests skip PyJWT's checks.

    A bounded LRU keyed by the token itself (and the key and algorithm that verified it): a
    token that differs by one character is a miss and goes through :func:`decode_access_token`.
    Only tokens that passed every check are kept; a kept token is refused with
    :class:`TokenExpired` from its ``exp`` on, as PyJWT refuses it (no leeway). The session check
    is not cached: revocation still takes effect at the next request. Verification costs about
    70 us a request on this project's machine, a hit about 1 us.

    Args:
        size: how many tokens are kept; the least recently used one goes first.
        clock: the current time, seconds since the epoch.
    """

    def __init__(self, size: int = 2048, clock: Callable[[], float] = time.time) -> None:
        self._size = size
        self._clock = clock
        self._entries: OrderedDict[tuple[str, str, str], tuple[Principal, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def verify(self, security: SecuritySettings, token: str) -> Principal:
        """Return the principal of ``token``, verified now or lately.

        Raises:
            TokenExpired: the token is past its ``exp``.
            TokenInvalid: the token is malformed, signed with another key, or lacks a claim.
        """
        key = (security.jwt_algorithm, security.jwt_secret.get_secret_value(), token)
        entry = self._entries.get(key)
        if entry is None:
            entry = _decode(security, token)
            self._entries[key] = entry
            if len(self._entries) > self._size:
                self._entries.popitem(last=False)
        else:
            self._entries.move_to_end(key)
        principal, expires = entry
        if expires <= self._clock():
            self._entries.pop(key, None)
            raise TokenExpired()
        return principal


verified_tokens = VerifiedTokens()
"""The process's verified access tokens (see :class:`VerifiedTokens`)."""


# -- request dependencies ---------------------------------------------------------------------

SessionValidator = Callable[[AsyncSession, Principal], Awaitable[Principal]]
"""Check that a token's session is live and return the principal with its current access.

It raises :class:`SessionRevoked` otherwise. The auth module provides it; it must stay one
primary-key lookup, since it runs on every authenticated request.
"""


def install_session_validator(app: FastAPI, validator: SessionValidator) -> None:
    """Make ``validator`` check every authenticated request of ``app``."""
    existing = getattr(app.state, "session_validator", None)
    if existing is not None and existing is not validator:
        raise RuntimeError("a session validator is already installed")
    app.state.session_validator = validator


def app_settings(request: Request) -> Settings:
    """FastAPI dependency: the settings the application was built with."""
    settings: Settings = request.app.state.settings
    return settings


CurrentSettings = Annotated[Settings, Depends(app_settings)]
"""The application's settings, as a dependency."""

_bearer = HTTPBearer(auto_error=False, description="An access token from POST /auth/login.")


async def get_principal(
    request: Request,
    session: DbSession,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """FastAPI dependency: the caller, from a valid access token of a live session."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise NotAuthenticated()
    settings = app_settings(request)
    principal = verified_tokens.verify(settings.security, credentials.credentials)
    validator: SessionValidator | None = getattr(request.app.state, "session_validator", None)
    if validator is None:
        raise RuntimeError("no session validator is installed; the auth module provides it")
    return await validator(session, principal)


async def get_principal_briefly(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """FastAPI dependency: the caller, checked in a short transaction of its own.

    For routes that call external systems and open their own short transactions: the request
    holds no database connection while it waits on the far side.
    """
    async with read_session() as session:  # one read by key: no transaction's round trips
        return await get_principal(request, session, credentials)


async def get_principal_reading(
    request: Request,
    session: ReadSession,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """FastAPI dependency: the caller, checked on the route's :data:`ReadSession`.

    For routes that only read: the session check and the route's read share one connection in
    autocommit, two round trips where a transaction takes four.
    """
    return await get_principal(request, session, credentials)


async def require_admin(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    """FastAPI dependency: the caller, who must be an admin of their organisation."""
    if not principal.is_admin:
        raise AdminRequired()
    return principal


async def require_employee_type(
    principal: Annotated[Principal, Depends(get_principal)],
) -> Principal:
    """FastAPI dependency: the caller, who must be an EMPLOYEE (an Oracle Fusion worker)."""
    if not principal.is_employee_type:
        raise UserNotEmployee()
    return principal


CurrentUser = Annotated[Principal, Depends(get_principal)]
"""Any authenticated user of a live session."""

CallerBriefly = Annotated[Principal, Depends(get_principal_briefly)]
"""Any authenticated user of a live session, checked without holding the request's session."""

CallerReading = Annotated[Principal, Depends(get_principal_reading)]
"""Any authenticated user of a live session, checked on the route's ``ReadSession``."""

RequireAdmin = Annotated[Principal, Depends(require_admin)]
"""An authenticated admin; others get 403 ``admin_required``."""

RequireEmployeeType = Annotated[Principal, Depends(require_employee_type)]
"""An authenticated EMPLOYEE; other types get 400 ``user_not_employee``."""

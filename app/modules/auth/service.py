"""Login, refresh-token rotation, logout and the per-request session check."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import secrets
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.contracts.auth import Device, UserLoggedIn, UserLoggedOut
from app.core.db import utcnow
from app.core.security import (
    Principal,
    SessionRevoked,
    TokenExpired,
    TokenInvalid,
    create_access_token,
    hash_password,
    normalize_email,
    password_needs_rehash,
    verify_password,
)
from app.core.settings import SecuritySettings, Settings
from app.events import publish
from app.modules.auth import repository
from app.modules.auth.errors import (
    DeviceNotBound,
    InvalidCredentials,
    LoginThrottled,
    OrganizationRequired,
    RefreshTokenReused,
)
from app.modules.auth.models import Account, AuthSession, LoginFailure, RefreshToken

logger = logging.getLogger(__name__)

EMAIL, ADDRESS = "email", "address"


@dataclass(frozen=True, slots=True)
class IssuedTokens:
    """An access token and the refresh token that renews it."""

    access_token: str
    refresh_token: str
    expires_in: int
    session_id: uuid.UUID


# -- login ------------------------------------------------------------------------------------


async def login(
    session: AsyncSession,
    *,
    settings: Settings,
    email: str,
    password: str,
    attempt: LoginAttempt,
    device: Device | None = None,
    organization_id: uuid.UUID | None = None,
) -> IssuedTokens:
    """Check credentials and open a session; emits ``auth.login``.

    ``attempt`` is this login, already counted as a failure by :func:`count_login_attempt` in
    a transaction of its own, so that it stays counted when the password is wrong. A success
    takes it back and clears the email's failures; so does an answer that only asks for the
    organisation (that error commits the take-back).

    Raises:
        InvalidCredentials: no active account matches (the attempt stays counted).
        OrganizationRequired: the credentials match accounts in several organisations.
    """
    now = utcnow()
    email = normalize_email(email)
    try:
        account = await _authenticate(
            session, settings, email, password, organization_id=organization_id
        )
    except OrganizationRequired:
        await repository.delete_failures(session, ids=attempt.ids)
        raise
    if account.password_hash and password_needs_rehash(settings, account.password_hash):
        account.password_hash = hash_password(settings, password)
    await repository.delete_failures(session, ids=attempt.ids)
    await repository.clear_failures(session, scope=EMAIL, key_hash=_key(EMAIL, email))
    auth_session = AuthSession(
        id=uuid.uuid4(),
        organization_id=account.organization_id,
        user_id=account.user_id,
        role=account.role,
        user_type=account.user_type,
        device_token=device.token if device else None,
        device_platform=device.platform if device else None,
        created_at=now,
        expires_at=now + timedelta(seconds=settings.security.refresh_token_ttl_seconds),
    )
    session.add(auth_session)
    tokens = await _issue(session, settings.security, auth_session, now=now)
    await publish(
        UserLoggedIn(
            organization_id=account.organization_id,
            user_id=account.user_id,
            session_id=auth_session.id,
            device=device,
        ),
    )
    return tokens


async def _authenticate(
    session: AsyncSession,
    settings: Settings,
    email: str,
    password: str,
    *,
    organization_id: uuid.UUID | None,
) -> Account:
    candidates = await repository.accounts_by_email(session, email, organization_id=organization_id)
    usable = [account for account in candidates if account.can_log_in]
    if not usable:
        verify_password(settings, None, password)  # the same cost as a real check
        raise InvalidCredentials()
    matched = [a for a in usable if verify_password(settings, a.password_hash, password)]
    if not matched:
        raise InvalidCredentials()
    if len(matched) > 1:
        raise OrganizationRequired()
    return matched[0]


@dataclass(frozen=True, slots=True)
class LoginAttempt:
    """A login attempt counted as a failure, until the login succeeds."""

    ids: tuple[uuid.UUID, ...]


async def count_login_attempt(
    session: AsyncSession, *, security: SecuritySettings, email: str, address: str
) -> LoginAttempt:
    """Count one login attempt as a failure, then refuse it if it is one too many.

    Record, count and take-back are one short transaction, ``session``'s, which the caller
    commits before the password is checked (so concurrent guesses see each other: of N
    parallel wrong guesses, at most the limit have their password checked) and which needs no
    other connection. Attempts on one email queue behind each other, so none counts without
    seeing the others: within the process before they take a connection (a burst never holds
    the pool while it waits), and across processes on the email's advisory lock. Attempts from
    one address do not queue: under a burst the address count may pass its limit by a few.
    The limits apply whether or not the email exists.

    Raises:
        LoginThrottled: too many recent failures for this email or client address, with
            ``Retry-After`` set to when the oldest counted failure expires. The caller rolls
            back: a throttled attempt is not counted (it checked no password).
    """
    now = utcnow()
    window = timedelta(seconds=security.login_window_seconds)
    email = normalize_email(email)
    keys = (
        (EMAIL, _key(EMAIL, email), security.login_max_failures),
        (ADDRESS, _key(ADDRESS, address), security.login_address_max_failures),
    )
    async with _one_at_a_time(keys[0][1]):
        await repository.lock_failure_keys(session, key_hashes=[keys[0][1]])
        await repository.prune_failures(session, before=now - window)
        ids: list[uuid.UUID] = []
        for scope, key_hash, _ in keys:
            failure = LoginFailure(id=uuid.uuid4(), scope=scope, key_hash=key_hash, failed_at=now)
            session.add(failure)
            ids.append(failure.id)
        await session.flush()
        retry_after = 0.0
        for scope, key_hash, limit in keys:
            count, oldest = await repository.failures_since(
                session, scope=scope, key_hash=key_hash, since=now - window
            )
            if count > limit and oldest is not None:
                retry_after = max(retry_after, (oldest + window - now).total_seconds())
    if retry_after > 0:
        raise LoginThrottled(retry_after=math.ceil(retry_after))
    return LoginAttempt(tuple(ids))


_queues: dict[str, tuple[asyncio.Lock, int]] = {}


@asynccontextmanager
async def _one_at_a_time(key: str) -> AsyncIterator[None]:
    """Run the block for one ``key`` at a time in this process, in arrival order."""
    lock, waiting = _queues.get(key, (asyncio.Lock(), 0))
    _queues[key] = (lock, waiting + 1)
    try:
        async with lock:
            yield
    finally:
        lock, waiting = _queues[key]
        if waiting == 1:
            del _queues[key]
        else:
            _queues[key] = (lock, waiting - 1)


def _key(scope: str, value: str) -> str:
    return hashlib.sha256(f"{scope}:{value}".encode()).hexdigest()


# -- refresh and logout -----------------------------------------------------------------------


async def refresh(session: AsyncSession, *, settings: Settings, refresh_token: str) -> IssuedTokens:
    """Rotate a refresh token: it is spent, and a new pair is issued for the same session.

    Raises:
        TokenInvalid: the token is unknown.
        SessionRevoked: the session has ended.
        TokenExpired: the token is past its lifetime.
        RefreshTokenReused: the token was already spent; the session is revoked, and that
            revocation commits although the refresh fails.
    """
    now = utcnow()
    stored = await repository.refresh_token_by_hash(session, _token_hash(refresh_token))
    if stored is None:
        raise TokenInvalid("The refresh token is not valid.")
    auth_session = await repository.get_session(session, stored.session_id)
    if auth_session is None or auth_session.revoked_at is not None:
        raise SessionRevoked()
    if stored.used_at is not None:
        raise await _reused(session, auth_session)
    if stored.expires_at <= now or auth_session.expires_at <= now:
        raise TokenExpired("The refresh token has expired; log in again.")
    if not await repository.mark_refresh_token_used(session, stored.id, now=now):
        raise await _reused(session, auth_session)
    auth_session.expires_at = now + timedelta(seconds=settings.security.refresh_token_ttl_seconds)
    return await _issue(session, settings.security, auth_session, now=now)


async def _reused(session: AsyncSession, auth_session: AuthSession) -> RefreshTokenReused:
    """Theft detection: a spent token came back, so its whole family ends.

    The revocation commits although the refresh fails (``RefreshTokenReused.commit``).
    """
    await revoke_session(session, session_id=auth_session.id, reason="refresh_token_reused")
    return RefreshTokenReused()


async def revoke_session(
    session: AsyncSession,
    *,
    session_id: uuid.UUID,
    reason: str,
    device_token: str | None = None,
) -> bool:
    """End a session and its refresh-token family; emits ``auth.logout``.

    The event names the push device bound to the session at login, never one the client
    chooses: ``device_token``, when given, must be that device's token.

    Returns:
        False when the session was already ended.

    Raises:
        DeviceNotBound: ``device_token`` is not the token bound to this session.
    """
    auth_session = await repository.get_session(session, session_id)
    if auth_session is None or auth_session.revoked_at is not None:
        return False
    if device_token is not None and not (
        auth_session.device_token is not None
        and secrets.compare_digest(device_token.encode(), auth_session.device_token.encode())
    ):
        raise DeviceNotBound()
    await _revoke(auth_session, reason=reason)
    await session.flush()
    return True


async def revoke_user_sessions(
    session: AsyncSession, *, user_id: uuid.UUID, reason: str, keep: uuid.UUID | None = None
) -> int:
    """End every live session of a user but ``keep``; emits ``auth.logout`` for each.

    Used when a user is deleted or deactivated, or their password is set.
    """
    sessions = [s for s in await repository.live_sessions_of(session, user_id) if s.id != keep]
    for auth_session in sessions:
        await _revoke(auth_session, reason=reason)
    await session.flush()
    return len(sessions)


async def _revoke(auth_session: AuthSession, *, reason: str) -> None:
    auth_session.revoked_at = utcnow()
    auth_session.revoked_reason = reason
    logger.info("session %s revoked: %s", auth_session.id, reason)
    await publish(
        UserLoggedOut(
            organization_id=auth_session.organization_id,
            user_id=auth_session.user_id,
            session_id=auth_session.id,
            device_token=auth_session.device_token,
        ),
    )


async def validate_session(session: AsyncSession, principal: Principal) -> Principal:
    """Check that an access token's session is live: one primary-key lookup per request.

    Returns:
        The principal with the role and type the session holds now.
    """
    auth_session = await repository.session_access(session, principal.session_id)
    if (
        auth_session is None
        or auth_session.user_id != principal.user_id
        or auth_session.organization_id != principal.organization_id
    ):
        raise SessionRevoked()
    if auth_session.revoked_at is not None or auth_session.expires_at <= utcnow():
        raise SessionRevoked()
    return principal.with_access(role=auth_session.role, user_type=auth_session.user_type)


async def _issue(
    session: AsyncSession, security: SecuritySettings, auth_session: AuthSession, *, now: datetime
) -> IssuedTokens:
    refresh_token = secrets.token_urlsafe(32)
    session.add(
        RefreshToken(
            session_id=auth_session.id,
            token_hash=_token_hash(refresh_token),
            created_at=now,
            expires_at=now + timedelta(seconds=security.refresh_token_ttl_seconds),
        )
    )
    await session.flush()
    principal = Principal(
        user_id=auth_session.user_id,
        organization_id=auth_session.organization_id,
        role=auth_session.role,
        user_type=auth_session.user_type,
        session_id=auth_session.id,
    )
    access_token, expires_in = create_access_token(security, principal, now=now)
    return IssuedTokens(access_token, refresh_token, expires_in, auth_session.id)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()

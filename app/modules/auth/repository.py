"""Queries of the auth module."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Row, bindparam, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.modules.auth.models import Account, AuthSession, LoginFailure, RefreshToken

MAX_ACCOUNTS_PER_EMAIL = 10
"""An email is unique per organisation; a login tries at most this many organisations."""


_SESSION_ACCESS = select(
    AuthSession.user_id,
    AuthSession.organization_id,
    AuthSession.role,
    AuthSession.user_type,
    AuthSession.expires_at,
    AuthSession.revoked_at,
).where(AuthSession.id == bindparam("session_id"))
"""Built once: every authenticated request reads it."""


SessionAccess = Row[uuid.UUID, uuid.UUID, str, str, datetime, datetime | None]


async def session_access(session: AsyncSession, session_id: uuid.UUID) -> SessionAccess | None:
    """Return what a token's session says now (owner, role, type, expiry, revocation), as
    plain columns on the session's connection: on the path of every authenticated request, no
    ORM object is built and the ORM's execution layer is skipped (about 0.08 ms a request)."""
    connection = await session.connection()
    result = await connection.execute(_SESSION_ACCESS, {"session_id": session_id})
    return result.one_or_none()


async def get_account(session: AsyncSession, user_id: uuid.UUID) -> Account | None:
    return await session.get(Account, user_id)


async def accounts_by_email(
    session: AsyncSession, email: str, *, organization_id: uuid.UUID | None = None
) -> Sequence[Account]:
    """Return the accounts with this email, in any organisation unless one is given."""
    query = select(Account).where(Account.email == email)
    if organization_id is not None:
        query = query.where(Account.organization_id == organization_id)
    query = query.order_by(Account.user_id).limit(MAX_ACCOUNTS_PER_EMAIL)
    return (await session.scalars(query)).all()


async def get_session(session: AsyncSession, session_id: uuid.UUID) -> AuthSession | None:
    return await session.get(AuthSession, session_id)


async def live_sessions_of(session: AsyncSession, user_id: uuid.UUID) -> Sequence[AuthSession]:
    query = select(AuthSession).where(
        AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None)
    )
    return (await session.scalars(query)).all()


async def set_session_access(
    session: AsyncSession, user_id: uuid.UUID, *, role: str, user_type: str
) -> None:
    """Give the user's live sessions their new role and type."""
    await session.execute(
        update(AuthSession)
        .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
        .values(role=role, user_type=user_type)
    )


async def refresh_token_by_hash(session: AsyncSession, token_hash: str) -> RefreshToken | None:
    query = select(RefreshToken).where(RefreshToken.token_hash == token_hash)
    return (await session.scalars(query)).one_or_none()


async def mark_refresh_token_used(
    session: AsyncSession, token_id: uuid.UUID, *, now: datetime
) -> bool:
    """Mark a refresh token used unless it already was; False means someone used it first."""
    result = await session.execute(
        update(RefreshToken)
        .where(RefreshToken.id == token_id, RefreshToken.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


async def failures_since(
    session: AsyncSession, *, scope: str, key_hash: str, since: datetime
) -> tuple[int, datetime | None]:
    """Count the failures of one key since ``since``, with the oldest of them."""
    query = select(func.count(), func.min(LoginFailure.failed_at)).where(
        LoginFailure.scope == scope,
        LoginFailure.key_hash == key_hash,
        LoginFailure.failed_at > since,
    )
    count, oldest = (await session.execute(query)).one()
    return int(count), oldest


async def lock_failure_keys(session: AsyncSession, *, key_hashes: Sequence[str]) -> None:
    """Queue this transaction behind any other that counts failures of the same keys.

    PostgreSQL takes a transaction-scoped advisory lock per key, in the order given (sort the
    keys, so two transactions never wait for each other). SQLite needs none: the write that
    follows takes its one database lock.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    for key_hash in key_hashes:
        await session.execute(select(func.pg_advisory_xact_lock(int(key_hash[:15], 16))))


async def prune_failures(session: AsyncSession, *, before: datetime) -> None:
    await session.execute(delete(LoginFailure).where(LoginFailure.failed_at <= before))


async def delete_failures(session: AsyncSession, *, ids: Sequence[uuid.UUID]) -> None:
    await session.execute(delete(LoginFailure).where(LoginFailure.id.in_(ids)))


async def clear_failures(session: AsyncSession, *, scope: str, key_hash: str) -> None:
    await session.execute(
        delete(LoginFailure).where(LoginFailure.scope == scope, LoginFailure.key_hash == key_hash)
    )

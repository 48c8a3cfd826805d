"""The credentials read model: what auth knows of each user, fed by the user module's events.

The listeners that call these run inline, inside the transaction that changed the user, so the
read model commits (or rolls back) with the change itself.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncSession

from app.contracts.user import UserSnapshot
from app.core.security import normalize_email
from app.modules.auth import repository, service
from app.modules.auth.models import Account

logger = logging.getLogger(__name__)

ACCESS_FIELDS = frozenset({"role", "user_type"})


async def store_account(
    session: AsyncSession, *, user_id: uuid.UUID, organization_id: uuid.UUID, user: UserSnapshot
) -> Account:
    """Create (or refresh) the account of a new user."""
    account = await repository.get_account(session, user_id)
    if account is None:
        account = Account(user_id=user_id, organization_id=organization_id)
        session.add(account)
    _apply(account, user)
    await session.flush()
    return account


async def update_account(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    organization_id: uuid.UUID,
    user: UserSnapshot,
    changed_fields: Iterable[str],
) -> None:
    """Follow a user's change; a deactivation ends their sessions, a new role reaches them."""
    account = await repository.get_account(session, user_id)
    if account is None:
        logger.warning("user %s changed but auth has no account for it; creating one", user_id)
        account = await store_account(
            session, user_id=user_id, organization_id=organization_id, user=user
        )
    was_active = account.is_active
    _apply(account, user)
    await session.flush()
    if ACCESS_FIELDS & set(changed_fields):
        await repository.set_session_access(
            session, user_id, role=account.role, user_type=account.user_type
        )
    if was_active and not account.is_active:
        await service.revoke_user_sessions(session, user_id=user_id, reason="user_deactivated")


async def delete_account(session: AsyncSession, *, user_id: uuid.UUID) -> None:
    """A deleted user can no longer log in, and their sessions end now."""
    account = await repository.get_account(session, user_id)
    if account is not None:
        account.is_deleted = True
        account.is_active = False
        await session.flush()
    await service.revoke_user_sessions(session, user_id=user_id, reason="user_deleted")


async def set_password_hash(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    password_hash: str,
    kept_session_id: uuid.UUID | None = None,
) -> None:
    """Keep a user's new argon2id hash, and end their sessions but ``kept_session_id``.

    Whoever held the old password (or a session opened with it) is out once it changes.
    """
    account = await repository.get_account(session, user_id)
    if account is None:
        logger.warning("credentials for unknown user %s ignored", user_id)
        return
    account.password_hash = password_hash
    await session.flush()
    await service.revoke_user_sessions(
        session, user_id=user_id, reason="password_changed", keep=kept_session_id
    )


def _apply(account: Account, user: UserSnapshot) -> None:
    account.email = normalize_email(user.email)
    account.role = user.role
    account.user_type = user.user_type
    account.is_active = user.is_active

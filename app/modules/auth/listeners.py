"""Listeners of the auth module: the credentials read model follows the user module's events.

They run inline and join the emitting transaction (``session_scope()`` joins), so a user change
and what auth knows of it commit together.
"""

from __future__ import annotations

from app.contracts.user import UserCreated, UserCredentialsChanged, UserDeleted, UserUpdated
from app.core.db import session_scope
from app.events import listener
from app.modules.auth import accounts


@listener(UserCreated, priority=100)
async def when_user_created_store_account(event: UserCreated) -> None:
    async with session_scope() as session:
        await accounts.store_account(
            session, user_id=event.user_id, organization_id=event.organization_id, user=event.user
        )


@listener(UserUpdated, priority=100)
async def when_user_updated_sync_account(event: UserUpdated) -> None:
    async with session_scope() as session:
        await accounts.update_account(
            session,
            user_id=event.user_id,
            organization_id=event.organization_id,
            user=event.user,
            changed_fields=event.changed_fields,
        )


@listener(UserDeleted, priority=100)
async def when_user_deleted_revoke_access(event: UserDeleted) -> None:
    async with session_scope() as session:
        await accounts.delete_account(session, user_id=event.user_id)


@listener(UserCredentialsChanged, priority=100)
async def when_user_credentials_changed_store_hash(event: UserCredentialsChanged) -> None:
    async with session_scope() as session:
        await accounts.set_password_hash(
            session,
            user_id=event.user_id,
            password_hash=event.password_hash,
            kept_session_id=event.kept_session_id,
        )

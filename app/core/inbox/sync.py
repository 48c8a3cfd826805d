"""An inbox's sync: the source's listing of a user's pending tasks, diffed into the inbox.

A sync reads the source with no transaction open and, while the source answers, the inbox's
pending rows (plain columns, on a connection of their own). It then applies the diff and
publishes what it found in one transaction (the caller's, when a durable delivery runs it, so
the effects commit with the delivery); the writes that depend on the rows read before are
conditional (see :func:`~app.core.inbox.store.apply_listing`). A steady sync, where nothing
changed, writes the rows' and the inbox's ``synced_at`` and nothing else.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from sqlalchemy.exc import IntegrityError

from app.core.db import one_write, read_session, reading, utcnow
from app.core.errors import TransientError
from app.core.inbox import store
from app.core.inbox.base import (
    NO_LONGER_PENDING,
    InboxBase,
    SyncResult,
    writing,
)
from app.core.inbox.source import (
    InboxUser,
    SourceError,
    SourceNotConfigured,
)
from app.core.inbox.store import ListingChanges

logger = logging.getLogger(__name__)


class SyncConflict(TransientError):
    """Two syncs of one inbox inserted the same new task at once and this one lost: a retry
    (the relay's, for a durable sync) finds the task stored and publishes nothing twice."""


class SyncingInbox(InboxBase):
    """The sync."""

    async def sync(
        self,
        user: InboxUser,
        *,
        sync_id: uuid.UUID | None,
        join: bool = True,
        merge_identity: bool = False,
    ) -> SyncResult:
        """List the user's pending tasks at the source and apply the diff to the inbox.

        Args:
            user: whose inbox.
            sync_id: the sync that finds the tasks (the received events carry it).
            join: apply the diff in the caller's transaction (a durable delivery's) or in one
                of its own.
            merge_identity: ``user`` comes from a sync request: keep the type and state the
                read model knows, take the identity from the request.

        Raises:
            SourceError: the source failed; the inbox keeps its last good copy.
            SyncConflict: another sync of this inbox stored the same new task first (a
                ``TransientError``: retry).
        """
        if merge_identity:
            user = await self._merged(user)
        if not self._can_sync(user):
            return SyncResult(skipped=True)
        try:
            # The listing and the inbox's pending rows at once: neither needs the other, and
            # no transaction is open while the source answers.
            listed, pending = await asyncio.gather(self.source.pending(user), self._pending(user))
        except SourceNotConfigured:
            raise
        except SourceError as exc:
            async with writing() as session:
                await store.mark_sync_failed(
                    session, self.tables, user, code=exc.code, now=utcnow()
                )
            raise
        now = utcnow()
        if not join and store.is_steady(listed, pending):
            # Nothing changed: stamp synced_at on a plain connection (on PostgreSQL one
            # statement in autocommit), no ORM session and nothing to publish.
            async with one_write() as conn:
                if await store.confirm_listing(conn, self.tables, user, listed, now=now):
                    return SyncResult(confirmed=len(listed))
        try:
            async with writing(join=join) as session:
                changes = await store.apply_listing(
                    session,
                    self.tables,
                    user,
                    listed,
                    pending=pending,
                    now=now,
                    close_reason=NO_LONGER_PENDING,
                )
                await self._publish(changes, sync_id=sync_id)
        except IntegrityError as exc:
            # Another sync of this inbox (a refresh beside the durable sync) inserted the same
            # new task first: nothing of this one was written or published, and the next try
            # finds the task stored.
            raise SyncConflict(
                f"{self.module} inbox of {user.user_id}: another sync stored its tasks first"
            ) from exc
        return SyncResult(
            received=len(changes.received),
            updated=len(changes.updated),
            closed=len(changes.closed),
            confirmed=changes.confirmed,
        )

    async def sync_requested(self, request: Any, *, sync_id: uuid.UUID | None) -> SyncResult:
        """Sync the inbox of the user a sync request names (its durable delivery), in the
        delivery's transaction.

        The identity comes from the request, the user's type and state from the read model. An
        organisation with no connection to the source is skipped (logged, not retried).

        Args:
            request: the ``user.sync.task.notifications`` event (``UserTaskSyncRequested``).
            sync_id: the sync that finds the tasks: the request's event id, shared by the
                modules, so that what one request finds is summed up in one push.

        Raises:
            SourceUnavailable: the source is down or throttling; a ``TransientError``, which
                the relay retries after its ``retry_after`` (else the listener's backoff).
            SourceError: any other source failure.
        """
        try:
            return await self.sync(
                InboxUser.requested(request), sync_id=sync_id, merge_identity=True
            )
        except SourceNotConfigured:
            logger.info(
                "%s sync of %s skipped: no %s connection",
                self.module,
                request.user_id,
                self.source.name,
            )
            return SyncResult(skipped=True)

    async def _pending(self, user: InboxUser) -> list[Any]:
        async with reading() as conn:
            return await store.pending_tasks(conn, self.tables, user)

    async def _merged(self, user: InboxUser) -> InboxUser:
        async with read_session() as session:
            row = await store.get_user(session, self.tables, user.organization_id, user.user_id)
            known = store.inbox_user(row) if row is not None else None
        return InboxUser(
            organization_id=user.organization_id,
            user_id=user.user_id,
            email=user.email or (known.email if known else None),
            oracle_username=user.oracle_username or (known.oracle_username if known else None),
            person_number=user.person_number or (known.person_number if known else None),
            user_type=known.user_type if known else user.user_type,
            is_active=known.is_active if known else user.is_active,
        )

    async def _publish(self, changes: ListingChanges, *, sync_id: uuid.UUID | None) -> None:
        for row in changes.received:
            await self.events.received(row, sync_id=sync_id)
        for row in changes.closed:
            await self.events.closed(row, reason=row.close_reason or NO_LONGER_PENDING)

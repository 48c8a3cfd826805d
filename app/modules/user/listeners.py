"""Listeners of the user module: device sessions, the profile pipeline and admin resyncs."""

from __future__ import annotations

import asyncio
import logging
import uuid

from app.contracts.auth import UserLoggedIn, UserLoggedOut
from app.contracts.hr import WorkerProfileSynced
from app.contracts.user import UserProfileSyncRequested, UserResyncRequested
from app.core.db import own_transaction, session_scope
from app.core.settings import get_settings
from app.events import RetryPolicy, listener, publish
from app.modules.user import service, sync

logger = logging.getLogger(__name__)


@listener(UserLoggedIn)
async def when_user_logged_in_record_device_session(event: UserLoggedIn) -> None:
    async with session_scope() as session:
        await service.record_device_login(session, event=event)


@listener(UserLoggedOut)
async def when_user_logged_out_end_device_session(event: UserLoggedOut) -> None:
    async with session_scope() as session:
        await service.end_device_session(session, event=event)


@listener(WorkerProfileSynced)
async def when_worker_profile_synced_store_profile(event: WorkerProfileSynced) -> None:
    async with session_scope() as session:
        await sync.store_worker_profile(session, event=event)


@listener(
    UserResyncRequested,
    delivery="durable",
    listener_id="user.resync.fan_out",
    retry=RetryPolicy(max_attempts=5, base_delay=5.0, max_delay=300.0),
)
async def when_resync_requested_fan_out_profile_syncs(event: UserResyncRequested) -> None:
    """Publish ``user.syncProfile`` for each active EMPLOYEE in scope, one page at a time.

    Each page is read, and each user's sync runs, in a transaction of its own (a bounded
    number at once), so one user's failure never stops the others and the fan-out never holds
    a connection while it waits. A retry after a crash requests some syncs twice, which is
    harmless (a sync is idempotent).
    """
    settings = get_settings().users
    limit = asyncio.Semaphore(settings.resync_concurrency)
    after: uuid.UUID | None = None
    requested = 0
    while True:
        async with own_transaction() as session:
            page = await sync.resync_page(
                session, event=event, after=after, limit=settings.resync_page_size
            )
        await asyncio.gather(*(_request_profile_sync(limit, request) for request in page))
        requested += len(page)
        if len(page) < settings.resync_page_size:
            break
        after = page[-1].user_id
    logger.info("resync of organisation %s: %d profile syncs", event.organization_id, requested)


async def _request_profile_sync(
    limit: asyncio.Semaphore, request: UserProfileSyncRequested
) -> None:
    async with limit, own_transaction():
        await publish(request)

"""Listeners of the user module: device sessions, the profile pipeline and admin resyncs."""

from __future__ import annotations

from app.contracts.auth import UserLoggedIn, UserLoggedOut
from app.contracts.hr import WorkerProfileSynced
from app.contracts.user import UserResyncRequested
from app.core.db import session_scope
from app.core.settings import get_settings
from app.events import RetryPolicy, listener
from app.modules.user import service, sync


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
    # Each user's sync commits on its own; a retry after a crash requests some syncs twice,
    # which is harmless (a sync is idempotent).
    await sync.fan_out_resync(event=event, settings=get_settings().users)

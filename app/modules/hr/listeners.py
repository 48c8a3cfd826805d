"""Listeners of the hr module: the profile pipeline.

A user's own sync runs inline, so that ``PUT /users/me/sync-profile`` awaits it and answers with
its outcome. A scheduled or admin sync runs durably, one user per delivery, in the relays of
every instance and retried on its own; a failure retrying cannot fix (HCM does not know the
worker, Oracle is not configured) is a dead letter at once: recorded, not retried.
"""

from __future__ import annotations

from app.contracts.user import UserProfileSyncRequested
from app.core.db import session_scope
from app.events import RetryPolicy, listener
from app.modules.hr import profile

PROFILE_SYNC_RETRY = RetryPolicy(max_attempts=5, base_delay=30.0, max_delay=1800.0)


@listener(UserProfileSyncRequested)
async def when_profile_sync_requested_by_user_read_worker(
    event: UserProfileSyncRequested,
) -> None:
    if event.requested_by != "user":
        return  # the durable listener below has it
    async with session_scope() as session:
        await profile.sync_worker_profile(session, event=event)


@listener(
    UserProfileSyncRequested,
    delivery="durable",
    listener_id="hr.profile.sync",
    retry=PROFILE_SYNC_RETRY,
)
async def when_profile_sync_scheduled_read_worker(event: UserProfileSyncRequested) -> None:
    if event.requested_by == "user":
        return  # answered inline, in the user's request
    async with session_scope() as session:
        await profile.sync_scheduled_profile(session, event=event)

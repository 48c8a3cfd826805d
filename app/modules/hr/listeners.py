"""Listeners of the hr module: the profile pipeline."""

from __future__ import annotations

from app.contracts.user import UserProfileSyncRequested
from app.core.db import session_scope
from app.events import listener
from app.modules.hr import profile


@listener(UserProfileSyncRequested)
async def when_profile_sync_requested_read_worker(event: UserProfileSyncRequested) -> None:
    # Inline: PUT /users/me/sync-profile awaits the pipeline and answers with its outcome.
    async with session_scope() as session:
        await profile.sync_worker_profile(session, event=event)

"""The user module: the organisation's people, their profiles and device sessions.

Routes (under /api/v1): GET /users/me, PUT /users/me/sync-profile; admin: GET, POST /users,
GET, PATCH, DELETE /users/{id}, POST /admin/users/{id}/resync, POST /admin/organization/resync.
Publishes ``user.created``, ``user.updated``, ``user.deleted``, ``user.credentials.changed``,
``user.syncProfile``, ``user.resync.requested`` and ``user.sync.task.notifications``.
Listens to ``auth.login`` and ``auth.logout`` (device sessions), ``hr.profile.synced`` (stores
the profile and line managers, then asks for the user's tasks) and ``user.resync.requested``
(durable: one ``user.syncProfile`` per active EMPLOYEE, page by page).
Jobs: ``task_sweep`` (``SCHEDULER_TASK_SWEEP_CRON``: one ``user.sync.task.notifications`` per
active user) and ``profile_sync`` (``SCHEDULER_PROFILE_SYNC_CRON``: one ``user.syncProfile`` per
active EMPLOYEE), fanned out by the scheduler.
Commands: ``python -m app org create``, ``python -m app user create``.
"""

from app.contracts.user import (
    UserCreated,
    UserCredentialsChanged,
    UserDeleted,
    UserProfileSyncRequested,
    UserResyncRequested,
    UserTaskSyncRequested,
    UserUpdated,
)
from app.core.modules import ModuleSpec
from app.modules.user import jobs, listeners
from app.modules.user.cli import org_cli, user_cli
from app.modules.user.provisioning import seed_demo
from app.modules.user.router import router

module = ModuleSpec(
    name="user",
    router=router,
    publishes=(
        UserCreated,
        UserUpdated,
        UserDeleted,
        UserCredentialsChanged,
        UserProfileSyncRequested,
        UserResyncRequested,
        UserTaskSyncRequested,
    ),
    listeners=(
        listeners.when_user_logged_in_record_device_session,
        listeners.when_user_logged_out_end_device_session,
        listeners.when_worker_profile_synced_store_profile,
        listeners.when_resync_requested_fan_out_profile_syncs,
    ),
    jobs=(jobs.task_sweep, jobs.profile_sync),
    seed_demo=seed_demo,
    cli=user_cli,
    extra_cli={"org": org_cli},
)

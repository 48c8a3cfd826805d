"""The hr module: worker profiles from Oracle Fusion HCM and pending HR approvals.

Publishes ``hr.profile.synced`` (the worker HCM reported, for the user module to store).
Listens to ``user.syncProfile``: reads the worker from HCM by person number, else by username;
inline for the user's own request (which awaits it), durable (``hr.profile.sync``, retried) for
scheduled and admin syncs.
"""

from app.contracts.hr import HrApprovalAudited, HrTaskClosed, HrTaskReceived, WorkerProfileSynced
from app.core.modules import ModuleSpec
from app.modules.hr import listeners
from app.modules.hr.router import router

module = ModuleSpec(
    name="hr",
    router=router,
    listeners=(
        listeners.when_profile_sync_requested_by_user_read_worker,
        listeners.when_profile_sync_scheduled_read_worker,
    ),
    publishes=(WorkerProfileSynced, HrApprovalAudited, HrTaskReceived, HrTaskClosed),
)

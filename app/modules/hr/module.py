"""The hr module: worker profiles from Oracle Fusion HCM and pending HR approvals.

Routes (under /api/v1): GET /hr/tasks, GET /hr/tasks/{id}, POST /hr/tasks/{id}/actions,
POST /hr/tasks/actions, GET /hr/approvals.
Publishes ``hr.profile.synced`` (the worker HCM reported, for the user module to store),
``hr.task.received``, ``hr.task.closed`` and ``audit.hr.approval``.
Listens to ``user.syncProfile``: reads the worker from HCM by person number, else by username;
inline for the user's own request (which awaits it), durable (``hr.profile.sync``, retried) for
scheduled and admin syncs. Listens to ``user.created``, ``user.updated`` and ``user.deleted``
(inline: who the user is in Oracle), ``user.sync.task.notifications`` (durable: sync the inbox)
and ``audit.hr.approval`` (durable: write the audit record, once).
Jobs: ``hr.idempotency.prune`` forgets Idempotency-Key answers past their time to live.
"""

from app.contracts.hr import HrApprovalAudited, HrTaskClosed, HrTaskReceived, WorkerProfileSynced
from app.core.inbox.jobs import idempotency_prune_job
from app.core.modules import ModuleSpec
from app.modules.hr import listeners
from app.modules.hr.router import router
from app.modules.hr.service import inbox

module = ModuleSpec(
    name="hr",
    router=router,
    listeners=(
        listeners.when_profile_sync_requested_by_user_read_worker,
        listeners.when_profile_sync_scheduled_read_worker,
        listeners.when_user_created_remember_identity,
        listeners.when_user_updated_remember_identity,
        listeners.when_user_deleted_stop_syncing,
        listeners.when_task_sync_requested_sync_inbox,
        listeners.when_approval_audited_write_record,
    ),
    publishes=(WorkerProfileSynced, HrApprovalAudited, HrTaskReceived, HrTaskClosed),
    jobs=(idempotency_prune_job(inbox),),
)

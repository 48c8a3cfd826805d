"""The leasing module: lease approvals from Yardi.

Routes (under /api/v1): GET /leasing/tasks, GET /leasing/tasks/{id},
POST /leasing/tasks/{id}/actions, POST /leasing/tasks/actions, GET /leasing/approvals.
Publishes ``leasing.task.received``, ``leasing.task.closed`` and ``audit.leasing.approval``.
Listens to ``user.created``, ``user.updated`` and ``user.deleted`` (inline: the user's Yardi
approver name), ``user.sync.task.notifications`` (durable: sync the inbox) and
``audit.leasing.approval`` (durable: write the audit record, once).
Jobs: ``leasing.idempotency.prune`` forgets Idempotency-Key answers past their time to live.
"""

from app.contracts.leasing import LeasingApprovalAudited, LeasingTaskClosed, LeasingTaskReceived
from app.core.inbox.jobs import idempotency_prune_job
from app.core.modules import ModuleSpec
from app.modules.leasing import listeners
from app.modules.leasing.router import router
from app.modules.leasing.service import inbox

module = ModuleSpec(
    name="leasing",
    router=router,
    publishes=(LeasingApprovalAudited, LeasingTaskReceived, LeasingTaskClosed),
    listeners=(
        listeners.when_user_created_remember_identity,
        listeners.when_user_updated_remember_identity,
        listeners.when_user_deleted_stop_syncing,
        listeners.when_task_sync_requested_sync_inbox,
        listeners.when_approval_audited_write_record,
    ),
    jobs=(idempotency_prune_job(inbox),),
)

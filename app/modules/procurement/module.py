"""The procurement module: Purchasing approvals from the Oracle Fusion BPM worklist.

Routes (under /api/v1): GET /procurement/tasks, GET /procurement/tasks/{id},
POST /procurement/tasks/{id}/actions, POST /procurement/tasks/actions, GET /procurement/approvals.
Publishes ``procurement.task.received``, ``procurement.task.closed`` and
``audit.procurement.approval``.
Listens to ``user.created``, ``user.updated`` and ``user.deleted`` (inline: who the user is in
Oracle), ``user.sync.task.notifications`` (durable: sync the inbox) and
``audit.procurement.approval`` (durable: write the audit record, once).
Jobs: ``procurement.idempotency.prune`` forgets Idempotency-Key answers past their time to live.
"""

from app.contracts.procurement import (
    ProcurementApprovalAudited,
    ProcurementTaskClosed,
    ProcurementTaskReceived,
)
from app.core.inbox.jobs import idempotency_prune_job
from app.core.modules import ModuleSpec
from app.modules.procurement import listeners
from app.modules.procurement.router import router
from app.modules.procurement.service import inbox

module = ModuleSpec(
    name="procurement",
    router=router,
    publishes=(ProcurementApprovalAudited, ProcurementTaskReceived, ProcurementTaskClosed),
    listeners=(
        listeners.when_user_created_remember_identity,
        listeners.when_user_updated_remember_identity,
        listeners.when_user_deleted_stop_syncing,
        listeners.when_task_sync_requested_sync_inbox,
        listeners.when_approval_audited_write_record,
    ),
    jobs=(idempotency_prune_job(inbox),),
)

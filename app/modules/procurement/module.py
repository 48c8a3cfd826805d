"""The procurement module's contribution to the application: routes, listeners and jobs."""

from app.contracts.procurement import (
    ProcurementApprovalAudited,
    ProcurementTaskClosed,
    ProcurementTaskReceived,
)
from app.core.modules import ModuleSpec
from app.modules.procurement.router import router

module = ModuleSpec(
    name="procurement",
    router=router,
    publishes=(ProcurementApprovalAudited, ProcurementTaskReceived, ProcurementTaskClosed),
)

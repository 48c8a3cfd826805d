"""The leasing module's contribution to the application: routes, listeners and jobs."""

from app.contracts.leasing import LeasingApprovalAudited, LeasingTaskClosed, LeasingTaskReceived
from app.core.modules import ModuleSpec
from app.modules.leasing.router import router

module = ModuleSpec(
    name="leasing",
    router=router,
    publishes=(LeasingApprovalAudited, LeasingTaskReceived, LeasingTaskClosed),
)

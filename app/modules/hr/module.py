"""The hr module's contribution to the application: routes, listeners and jobs."""

from app.core.modules import ModuleSpec
from app.modules.hr.router import router

module = ModuleSpec(name="hr", router=router)

"""The user module's contribution to the application: routes, listeners and jobs."""

from app.core.modules import ModuleSpec
from app.modules.user.router import router

module = ModuleSpec(name="user", router=router)

"""The auth module's contribution to the application: routes, listeners and jobs."""

from app.core.modules import ModuleSpec
from app.modules.auth.router import router

module = ModuleSpec(name="auth", router=router)

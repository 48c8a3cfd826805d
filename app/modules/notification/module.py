"""The notification module's contribution to the application: routes, listeners and jobs."""

from app.core.modules import ModuleSpec
from app.modules.notification.router import router

module = ModuleSpec(name="notification", router=router)

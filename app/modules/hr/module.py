"""The hr module: worker profiles from Oracle Fusion HCM and pending HR approvals.

Publishes ``hr.profile.synced`` (the worker HCM reported, for the user module to store) and
``hr.profile.sync_failed`` (a scheduled or admin sync of a worker HCM does not know).
Listens to ``user.syncProfile`` (inline: reads the worker from HCM by person number, else by
username; the user's own request awaits it).
"""

from app.core.modules import ModuleSpec
from app.modules.hr import listeners
from app.modules.hr.router import router

module = ModuleSpec(
    name="hr",
    router=router,
    listeners=(listeners.when_profile_sync_requested_read_worker,),
)

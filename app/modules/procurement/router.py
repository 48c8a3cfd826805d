"""REST routes of the procurement module: the shared inbox routes over its inbox."""

from app.core.inbox.router import inbox_router
from app.modules.procurement.service import inbox

router = inbox_router(inbox, prefix="/procurement", tag="procurement")

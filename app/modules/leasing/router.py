"""REST routes of the leasing module: the shared inbox routes over its inbox."""

from app.core.inbox.router import inbox_router
from app.modules.leasing.service import inbox

router = inbox_router(inbox, prefix="/leasing", tag="leasing")

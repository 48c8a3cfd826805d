"""REST routes of the hr module: the shared inbox routes over its inbox."""

from app.core.inbox.router import inbox_router
from app.modules.hr.service import inbox

router = inbox_router(inbox, prefix="/hr", tag="hr")

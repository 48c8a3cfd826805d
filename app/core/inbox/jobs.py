"""The scheduled job every inbox module declares: forgetting expired ``Idempotency-Key`` answers."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.inbox.engine import TaskInbox
from app.core.inbox.settings import get_inbox_settings
from app.core.modules import JobContext, JobSpec

logger = logging.getLogger(__name__)


def idempotency_prune_job(inbox: TaskInbox) -> JobSpec:
    """The job ``<m>.idempotency.prune``: one organisation's keys past their time to live."""

    async def prune(session: AsyncSession, context: JobContext) -> None:
        pruned = await inbox.prune_idempotency_keys(
            session, organization_id=context.organization_id
        )
        logger.info("%s: forgot %d expired idempotency key(s)", inbox.module, pruned)

    return JobSpec(
        id=f"{inbox.module}.idempotency.prune",
        cron=lambda: get_inbox_settings().prune_cron,
        cron_setting="INBOX_PRUNE_CRON",
        description="Forget Idempotency-Key answers older than INBOX_IDEMPOTENCY_TTL_HOURS",
        run=prune,
    )

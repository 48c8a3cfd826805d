"""Scheduled jobs of the notification module."""

from __future__ import annotations

import logging
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.modules import JobContext, JobSpec
from app.core.settings import get_settings
from app.modules.notification import service

logger = logging.getLogger(__name__)


async def prune_notifications(session: AsyncSession, *, organization_id: uuid.UUID) -> int:
    """Delete the organisation's notifications older than ``NOTIFICATIONS_RETENTION_DAYS``."""
    settings = get_settings().notifications
    pruned = await service.prune(session, organization_id=organization_id, settings=settings)
    logger.info("pruned %d notification(s) older than %d days", pruned, settings.retention_days)
    return pruned


async def prune_job(session: AsyncSession, context: JobContext) -> None:
    """The scheduler's entry: prune one organisation's notifications."""
    await prune_notifications(session, organization_id=context.organization_id)


prune = JobSpec(
    id="notification.prune",
    cron=lambda: get_settings().notifications.prune_cron,
    cron_setting="NOTIFICATIONS_PRUNE_CRON",
    description="Delete notifications older than NOTIFICATIONS_RETENTION_DAYS",
    run=prune_job,
)

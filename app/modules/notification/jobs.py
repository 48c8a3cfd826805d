"""Scheduled jobs of the notification module."""

from __future__ import annotations

import logging
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.settings import get_settings
from app.modules.notification import service

logger = logging.getLogger(__name__)


async def prune_notifications(session: AsyncSession, *, organization_id: uuid.UUID) -> int:
    """Delete the organisation's notifications older than ``NOTIFICATIONS_RETENTION_DAYS``."""
    settings = get_settings().notifications
    pruned = await service.prune(session, organization_id=organization_id, settings=settings)
    logger.info("pruned %d notification(s) older than %d days", pruned, settings.retention_days)
    return pruned

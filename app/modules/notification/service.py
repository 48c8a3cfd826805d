"""Notifications: stored once per user, module and task; read, resolved, pruned; preferences."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.contracts.common import PendingTaskReceived
from app.core.db import savepoint
from app.core.settings import NotificationSettings
from app.integrations.fcm import PushGateway
from app.modules.notification import clock, preferences, push, repository
from app.modules.notification.errors import NotificationNotFound
from app.modules.notification.models import Notification, Push, TaskClosure
from app.modules.notification.schemas import PushTotals

logger = logging.getLogger(__name__)

PRUNE_BATCH = 5000


async def store_task_notification(
    session: AsyncSession,
    *,
    event: PendingTaskReceived,
    module: str,
    settings: NotificationSettings,
) -> Notification | None:
    """Store the notification of a new task and put it in the user's next push.

    Returns None when the user already has one for this task (a replay, a retried delivery,
    a second sweep): nothing is stored or pushed twice. A task whose close was delivered
    first is stored resolved, and not pushed.
    """
    stored, closed_at = await repository.task_state(session, event.user_id, module, event.task_id)
    if stored:
        return None
    notification = Notification(
        organization_id=event.organization_id,
        user_id=event.user_id,
        module=module,
        task_id=event.task_id,
        title=event.title[:300],
        body=event.summary[:1000] if event.summary else None,
        sync_id=event.sync_id,
        created_at=clock.now(),
        resolved_at=closed_at,
        push_status="pending" if closed_at is None else "skipped",
    )
    try:
        async with savepoint(session):
            session.add(notification)
            await session.flush()
    except IntegrityError:
        return None  # stored by a concurrent delivery of the same task
    if closed_at is not None:
        return notification
    preference = await repository.get_preference(session, event.user_id)
    if not preferences.push_enabled(preference, module):
        notification.push_status = "off"
        return notification
    await push.add_to_next_push(
        session,
        notification=notification,
        quiet_hours=preferences.quiet_hours_of(preference),
        window=timedelta(seconds=settings.summary_window_seconds),
    )
    return notification


async def send_due_push(
    session: AsyncSession,
    *,
    push_id: uuid.UUID,
    gateway: PushGateway,
    idempotency_key: str,
) -> Push | None:
    """Send a push whose window closed, under the user's current preferences."""
    return await push.send_push(
        session, push_id=push_id, gateway=gateway, idempotency_key=idempotency_key
    )


async def resend_push(
    session: AsyncSession,
    *,
    push_id: uuid.UUID,
    device_ids: Sequence[uuid.UUID],
    round: int,
    gateway: PushGateway,
) -> int:
    """Send a push again to the devices FCM failed with an error that may pass."""
    return await push.resend_push(
        session, push_id=push_id, device_ids=device_ids, round=round, gateway=gateway
    )


async def resolve_task_notification(
    session: AsyncSession,
    *,
    organization_id: uuid.UUID,
    user_id: uuid.UUID,
    module: str,
    task_id: str,
) -> int:
    """Mark the notification of a task that left the inbox resolved (it is no longer unread).

    When none is stored yet (the close was delivered before the receive), the closure is
    recorded, so the receive stores it resolved.
    """
    now = clock.now()
    resolved = await repository.resolve(session, user_id, module, task_id, at=now)
    if resolved:
        return resolved
    stored, _ = await repository.task_state(session, user_id, module, task_id)
    if not stored:
        await repository.record_closure(
            session,
            TaskClosure(
                organization_id=organization_id,
                user_id=user_id,
                module=module,
                task_id=task_id,
                closed_at=now,
            ),
        )
    return 0


async def list_notifications(
    session: AsyncSession, *, user_id: uuid.UUID, unread: bool, limit: int, offset: int
) -> tuple[Sequence[Notification], int]:
    """Return one page of the user's notifications, newest first."""
    return await repository.list_notifications(
        session, user_id, unread=unread, limit=limit, offset=offset
    )


async def unread_count(session: AsyncSession, *, user_id: uuid.UUID) -> int:
    """Return how many of the user's notifications are neither read nor resolved."""
    return await repository.unread_count(session, user_id)


async def mark_read(
    session: AsyncSession, *, user_id: uuid.UUID, notification_id: uuid.UUID
) -> Notification:
    """Mark one of the user's notifications read (again is harmless)."""
    notification = await repository.get_notification(session, notification_id, user_id)
    if notification is None:
        raise NotificationNotFound()
    if notification.read_at is None:
        notification.read_at = clock.now()
        await session.flush()
    return notification


async def mark_all_read(session: AsyncSession, *, user_id: uuid.UUID) -> int:
    """Mark every unread notification of the user read; return how many changed."""
    return await repository.mark_all_read(session, user_id, at=clock.now())


async def prune(
    session: AsyncSession, *, organization_id: uuid.UUID, settings: NotificationSettings
) -> int:
    """Delete the organisation's notifications (and sent pushes) older than the retention."""
    cutoff = clock.now() - timedelta(days=settings.retention_days)
    pruned = 0
    while True:
        deleted = await repository.prune_before(session, organization_id, cutoff, batch=PRUNE_BATCH)
        pruned += deleted
        if deleted < PRUNE_BATCH:
            break
    await repository.prune_pushes_before(session, organization_id, cutoff)
    await repository.prune_closures_before(session, organization_id, cutoff)
    return pruned


async def push_totals(
    session: AsyncSession, *, organization_id: uuid.UUID, since: datetime
) -> PushTotals:
    """Count the organisation's pushes sent since ``since``, their notifications and devices."""
    pushes, notifications, delivered = await repository.sent_push_totals(
        session, organization_id, since
    )
    return PushTotals(since=since, pushes=pushes, notifications=notifications, delivered=delivered)

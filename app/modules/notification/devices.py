"""Push devices: registration (at login or by the API), deactivation, and their FCM topics.

A token belongs to one user at a time: registering a token that another user held moves the
row to the new owner. The topics each token is subscribed to are recorded here when FCM
confirms them, so logout unsubscribes exactly those without asking FCM (the Instance ID lookup
the original system used is deprecated).
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from app.contracts.notification import DeviceDeactivated, DeviceRegistered
from app.core.settings import NotificationSettings
from app.events import publish
from app.integrations.fcm import PushGateway
from app.modules.notification import clock, repository
from app.modules.notification.errors import DeviceNotFound
from app.modules.notification.models import Device

logger = logging.getLogger(__name__)


def token_digest(token: str) -> str:
    """Return the SHA-256 hex digest a token is unique by."""
    return hashlib.sha256(token.encode()).hexdigest()


def topics_for(device: Device, settings: NotificationSettings) -> set[str]:
    """Return the topics the product subscribes a device to: its organisation's broadcast."""
    return {f"{settings.broadcast_topic_prefix}{device.organization_id}"}


async def register_device(
    session: AsyncSession,
    *,
    organization_id: uuid.UUID,
    user_id: uuid.UUID,
    token: str,
    platform: str,
    name: str | None,
    session_id: uuid.UUID | None = None,
) -> Device:
    """Register ``token`` for the user (moving it from whoever held it) and subscribe its topics."""
    now = clock.now()
    device = await repository.get_device_by_digest(session, token_digest(token))
    if device is None:
        device = Device(
            organization_id=organization_id,
            user_id=user_id,
            token=token,
            token_digest=token_digest(token),
            platform=platform,
            created_at=now,
        )
        session.add(device)
    elif device.user_id != user_id:
        logger.info("device %s moves to another user", device.id)
        device.organization_id = organization_id
        device.user_id = user_id
        device.created_at = now
    device.platform = platform
    device.name = name if name is not None else device.name
    device.session_id = session_id
    device.is_active = True
    device.deactivated_at = None
    device.deactivated_reason = None
    device.last_seen_at = now
    await session.flush()
    await publish(
        DeviceRegistered(organization_id=organization_id, device_id=device.id, user_id=user_id)
    )
    return device


async def list_devices(
    session: AsyncSession, *, user_id: uuid.UUID, limit: int, offset: int
) -> tuple[Sequence[Device], int]:
    """Return one page of the user's active devices and how many there are."""
    return await repository.list_devices(session, user_id, limit=limit, offset=offset)


async def remove_device(session: AsyncSession, *, user_id: uuid.UUID, device_id: uuid.UUID) -> None:
    """Deactivate one of the user's devices; another user's device is not found."""
    device = await repository.get_device(session, device_id, user_id=user_id)
    if device is None or not device.is_active:
        raise DeviceNotFound()
    await deactivate(session, device, reason="removed")


async def deactivate(session: AsyncSession, device: Device, *, reason: str) -> None:
    """Stop pushing to ``device`` and have its topics unsubscribed (durably)."""
    if not device.is_active:
        return
    device.is_active = False
    device.deactivated_at = clock.now()
    device.deactivated_reason = reason
    await session.flush()
    await publish(
        DeviceDeactivated(
            organization_id=device.organization_id,
            device_id=device.id,
            user_id=device.user_id,
            reason=reason,
        )
    )


async def deactivate_dead_device(
    session: AsyncSession, device_id: uuid.UUID, *, reason: str
) -> None:
    """Deactivate the device of a token FCM says is gone (see :func:`deactivate_dead`)."""
    device = await repository.get_device(session, device_id)
    if device is not None and device.is_active:
        await deactivate_dead(session, device, reason=reason)


async def deactivate_dead(session: AsyncSession, device: Device, *, reason: str) -> None:
    """Deactivate a token FCM says is gone: never sent to again, and nothing to unsubscribe."""
    device.is_active = False
    device.deactivated_at = clock.now()
    device.deactivated_reason = reason
    await repository.forget_topics(session, device.id)
    await session.flush()
    logger.info("device %s deactivated: FCM answered %s", device.id, reason)


async def end_session_devices(
    session: AsyncSession, *, user_id: uuid.UUID, session_id: uuid.UUID, token: str | None
) -> int:
    """Deactivate the device a logged-out session registered (by session, or by its token).

    A token that a later login of the same user registered again belongs to that session now:
    ending the earlier one leaves it alone.
    """
    devices = list(await repository.devices_of_session(session, user_id, session_id))
    if token is not None:
        device = await repository.get_device_by_digest(session, token_digest(token))
        if (
            device is not None
            and device.user_id == user_id
            and device.session_id in (None, session_id)
            and device not in devices
        ):
            devices.append(device)
    for device in devices:
        await deactivate(session, device, reason="logout")
    return len(devices)


async def deactivate_user_devices(session: AsyncSession, *, user_id: uuid.UUID) -> int:
    """Deactivate every device of a deleted user."""
    devices = await repository.active_devices(session, user_id)
    for device in devices:
        await deactivate(session, device, reason="user_deleted")
    return len(devices)


async def sync_topics(
    session: AsyncSession,
    *,
    device_id: uuid.UUID,
    gateway: PushGateway,
    settings: NotificationSettings,
) -> None:
    """Bring an active device's FCM topics to what the product wants, and record them."""
    device = await repository.get_device(session, device_id)
    if device is None or not device.is_active:
        return  # deactivated since: its own event unsubscribes what was recorded
    wanted = topics_for(device, settings)
    recorded = set(await repository.device_topics(session, device.id))
    for topic in sorted(recorded - wanted):  # it moved to another organisation
        await gateway.unsubscribe([device.token], topic)
        await repository.forget_topics(session, device.id, [topic])
    for topic in sorted(wanted - recorded):
        result = await gateway.subscribe([device.token], topic)
        if result.dead_tokens:
            await deactivate_dead(session, device, reason=result.errors[0].reason.lower())
            return
        if result.errors:
            raise TopicSubscriptionFailed(f"FCM refused topic {topic}: {result.errors[0].reason}")
        await repository.record_topic(session, device.id, topic)


async def leave_topics(
    session: AsyncSession, *, device_id: uuid.UUID, gateway: PushGateway
) -> None:
    """Unsubscribe an inactive device's token from every recorded topic, and forget them."""
    device = await repository.get_device(session, device_id)
    if device is None or device.is_active:
        return  # registered again since: its topics are wanted
    for topic in await repository.device_topics(session, device.id):
        result = await gateway.unsubscribe([device.token], topic)
        if result.errors and not result.dead_tokens:
            raise TopicSubscriptionFailed(
                f"FCM refused to unsubscribe {topic}: {result.errors[0].reason}"
            )
        await repository.forget_topics(session, device.id, [topic])


class TopicSubscriptionFailed(RuntimeError):
    """FCM answered a topic change with an error that may pass: the delivery retries."""

"""Listeners of the notification module: devices at login and logout, notifications, pushes.

Device bookkeeping runs inline, in the transaction of the login, logout or deletion that caused
it, so a logged-out device stops receiving at once. Everything that calls FCM, and everything
that stores a notification, is durable: retried with backoff, then a dead letter an admin can
retry; an FCM call carries the delivery's idempotency key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from app.contracts.auth import UserLoggedIn, UserLoggedOut
from app.contracts.common import PendingTaskClosed, PendingTaskReceived
from app.contracts.hr import HrTaskClosed, HrTaskReceived
from app.contracts.leasing import LeasingTaskClosed, LeasingTaskReceived
from app.contracts.notification import (
    DeviceDeactivated,
    DeviceRegistered,
    PushResendScheduled,
    PushScheduled,
)
from app.contracts.procurement import ProcurementTaskClosed, ProcurementTaskReceived
from app.contracts.user import UserDeleted
from app.core.db import session_scope
from app.core.settings import get_settings
from app.events import Event, RetryPolicy, current_delivery, listener
from app.integrations.runtime import get_integrations
from app.modules.notification import devices, service
from app.modules.notification.push import FCM_RETRY

F = TypeVar("F", bound=Callable[..., Any])
STORE_RETRY = RetryPolicy(max_attempts=8, base_delay=1.0, max_delay=120.0)
RECEIVED: dict[str, type[PendingTaskReceived]] = {
    "procurement": ProcurementTaskReceived,
    "hr": HrTaskReceived,
    "leasing": LeasingTaskReceived,
}
CLOSED: dict[str, type[PendingTaskClosed]] = {
    "procurement": ProcurementTaskClosed,
    "hr": HrTaskClosed,
    "leasing": LeasingTaskClosed,
}


def _module_of(event: PendingTaskReceived | PendingTaskClosed) -> str:
    return type(event).name.partition(".")[0]


def _calls_fcm(event: type[Event], listener_id: str) -> Callable[[F], F]:
    """Declare a durable listener that calls FCM: retried under ``FCM_RETRY``."""
    return listener(event, delivery="durable", listener_id=listener_id, retry=FCM_RETRY)


def _per_module(events: Mapping[str, type[Event]], action: str) -> Callable[[F], F]:
    """Declare one durable listener per task module (``notification.<module>_task.<action>``):
    each keeps its own deliveries, retries and dead letters."""

    def declare(fn: F) -> F:
        for module, event in events.items():
            fn = listener(
                event,
                delivery="durable",
                listener_id=f"notification.{module}_task.{action}",
                retry=STORE_RETRY,
            )(fn)
        return fn

    return declare


@listener(UserLoggedIn)
async def when_user_logged_in_register_device(event: UserLoggedIn) -> None:
    if event.device is None:
        return
    async with session_scope() as session:
        await devices.register_device(
            session,
            organization_id=event.organization_id,
            user_id=event.user_id,
            token=event.device.token,
            platform=event.device.platform,
            name=event.device.name,
            session_id=event.session_id,
        )


@listener(UserLoggedOut)
async def when_user_logged_out_deactivate_device(event: UserLoggedOut) -> None:
    async with session_scope() as session:
        await devices.end_session_devices(
            session, user_id=event.user_id, session_id=event.session_id, token=event.device_token
        )


@listener(UserDeleted)
async def when_user_deleted_deactivate_devices(event: UserDeleted) -> None:
    async with session_scope() as session:
        await devices.deactivate_user_devices(session, user_id=event.user_id)


@_calls_fcm(DeviceRegistered, "notification.device_topics.subscribe")
async def when_device_registered_subscribe_topics(event: DeviceRegistered) -> None:
    async with session_scope() as session:
        await devices.sync_topics(
            session,
            device_id=event.device_id,
            gateway=get_integrations().push,
            settings=get_settings().notifications,
        )


@_calls_fcm(DeviceDeactivated, "notification.device_topics.unsubscribe")
async def when_device_deactivated_unsubscribe_topics(event: DeviceDeactivated) -> None:
    async with session_scope() as session:
        await devices.leave_topics(
            session, device_id=event.device_id, gateway=get_integrations().push
        )


@_per_module(RECEIVED, "store")
async def when_task_received_store_notification(event: PendingTaskReceived) -> None:
    async with session_scope() as session:
        await service.store_task_notification(
            session,
            event=event,
            module=_module_of(event),
            settings=get_settings().notifications,
        )


@_per_module(CLOSED, "resolve")
async def when_task_closed_resolve_notification(event: PendingTaskClosed) -> None:
    async with session_scope() as session:
        await service.resolve_task_notification(
            session,
            organization_id=event.organization_id,
            user_id=event.user_id,
            module=_module_of(event),
            task_id=event.task_id,
        )


@_calls_fcm(PushScheduled, "notification.push")
async def when_push_scheduled_send_push(event: PushScheduled) -> None:
    delivery = current_delivery()
    key = delivery.idempotency_key if delivery else f"{event.push_id}:inline"
    async with session_scope() as session:
        await service.send_due_push(
            session,
            push_id=event.push_id,
            gateway=get_integrations().push,
            idempotency_key=key,
        )


@_calls_fcm(PushResendScheduled, "notification.push.resend")
async def when_push_resend_scheduled_resend_push(event: PushResendScheduled) -> None:
    async with session_scope() as session:
        await service.resend_push(
            session,
            push_id=event.push_id,
            device_ids=event.device_ids,
            round=event.round,
            gateway=get_integrations().push,
        )

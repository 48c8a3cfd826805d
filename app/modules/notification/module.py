"""The notification module: push devices and their topics, notifications, pushes, preferences.

Routes (under /api/v1): POST, GET /devices, DELETE /devices/{id}; GET /notifications,
GET /notifications/unread-count, POST /notifications/{id}/read, POST /notifications/read-all,
GET, PUT /notifications/preferences.
Publishes ``notification.device.registered``, ``notification.device.deactivated``,
``notification.push.scheduled`` and ``notification.push_resend.scheduled`` (its own durable
follow-ups).
Listens to ``auth.login`` (registers the device sent with it), ``auth.logout`` and
``user.deleted`` (deactivate devices), inline; and durably to ``<module>.task.received``
(stores one notification per user and task, and puts it in the user's next push),
``<module>.task.closed`` (resolves it), its own device events (FCM topic subscriptions) and
``notification.push.scheduled`` (sends the push through firebase-admin when it is due) and
``notification.push_resend.scheduled`` (sends it again to the devices FCM failed for a while).
Jobs: ``notification.prune`` deletes notifications past the retention.
"""

from app.contracts.notification import (
    DeviceDeactivated,
    DeviceRegistered,
    PushResendScheduled,
    PushScheduled,
)
from app.core.modules import ModuleSpec
from app.modules.notification import jobs, listeners
from app.modules.notification.router import router

module = ModuleSpec(
    name="notification",
    router=router,
    publishes=(DeviceRegistered, DeviceDeactivated, PushScheduled, PushResendScheduled),
    listeners=(
        listeners.when_user_logged_in_register_device,
        listeners.when_user_logged_out_deactivate_device,
        listeners.when_user_deleted_deactivate_devices,
        listeners.when_device_registered_subscribe_topics,
        listeners.when_device_deactivated_unsubscribe_topics,
        listeners.when_task_received_store_notification,
        listeners.when_task_closed_resolve_notification,
        listeners.when_push_scheduled_send_push,
        listeners.when_push_resend_scheduled_resend_push,
    ),
    jobs=(jobs.prune,),
)

"""Errors of the notification module."""

from __future__ import annotations

from app.core.errors import NotFound


class DeviceNotFound(NotFound):
    code = "device_not_found"
    detail = "You have no device with this id."


class NotificationNotFound(NotFound):
    code = "notification_not_found"
    detail = "You have no notification with this id."

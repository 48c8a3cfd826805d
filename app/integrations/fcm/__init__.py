"""FCM push through firebase-admin, or the log."""

from app.integrations.fcm.credentials import StaticTokenCredential
from app.integrations.fcm.gateway import FirebasePushGateway, LogPushGateway, PushGateway
from app.integrations.fcm.models import (
    MAX_BATCH,
    BatchResult,
    PushMessage,
    SendResult,
    TopicError,
    TopicResult,
)

__all__ = [
    "MAX_BATCH",
    "BatchResult",
    "FirebasePushGateway",
    "LogPushGateway",
    "PushGateway",
    "PushMessage",
    "SendResult",
    "StaticTokenCredential",
    "TopicError",
    "TopicResult",
]

"""Every metric series of the notification module, named in one place.

``outcome`` is fixed by the code: ``sent`` (FCM accepted the message), ``token_dead`` (the token
will never work again; the device is deactivated), ``retryable`` (FCM asked us to try later) or
``failed`` (anything else). One count per message, that is per device of a push.
"""

from __future__ import annotations

from prometheus_client import Counter

PUSH_SENDS = Counter(
    "workflow_hub_push_sends_total",
    "Push messages handed to FCM, one per device, by outcome (sent, token_dead, retryable, "
    "failed).",
    ["outcome"],
)
PUSH_OUTCOMES = ("sent", "token_dead", "retryable", "failed")
for _outcome in PUSH_OUTCOMES:  # every outcome is exported from the start, at 0
    PUSH_SENDS.labels(_outcome)

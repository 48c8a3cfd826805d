"""Pushes: notifications that arrive within one window become one push to every active device.

A notification joins the user's open push, or opens one due when the summary window closes
(later, when the user is inside quiet hours). The push is a durable delivery
(``notification.push.scheduled``) written due at that time, so nothing waits in memory; run
while the user's quiet hours hold it (they may have changed meanwhile), it defers itself to
their end (``Defer``: no attempt spent). It sends one firebase-admin call per 500 devices, with
the delivery's idempotency key in the data and the push's id as collapse key and tag, so a
repeat after a crash (between the send and the commit) replaces the first on the phone.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.contracts.notification import PushResendScheduled, PushScheduled
from app.core.db import savepoint
from app.core.tracing import span
from app.events import Defer, RetryPolicy, publish
from app.integrations.fcm import MAX_BATCH, PushGateway, PushMessage, SendResult
from app.modules.notification import clock, devices, preferences, repository
from app.modules.notification.metrics import PUSH_SENDS
from app.modules.notification.models import Notification, Push
from app.modules.notification.quiet import QuietHours
from app.modules.notification.repository import PushItem, Target

logger = logging.getLogger(__name__)

MODULE_ORDER = ("procurement", "hr", "leasing")
FCM_RETRY = RetryPolicy(max_attempts=10, base_delay=2.0, max_delay=600.0)
"""About an hour and a half of backoff before a push or a topic change is a dead letter; the
resends of a push to the devices FCM failed for a while wait as long between rounds. A push
waiting for its window or quiet hours spends no attempt: its delivery is due at their end."""


SEND_SPAN = "fcm send"
"""The span of one batch handed to the push gateway (tracing on: ``app.core.tracing``)."""

OPEN_PUSH_ATTEMPTS = 5
"""Tries at joining or opening a user's push while other deliveries open and send theirs."""


class PushContended(RuntimeError):
    """The user's pushes kept opening and closing under this delivery: it is retried."""


class PushUnavailable(RuntimeError):
    """FCM failed every message with an error that may pass: the delivery retries.

    When only some failed so, the others are kept and those devices get a resend of their own
    (``notification.push_resend.scheduled``)."""


async def add_to_next_push(
    session: AsyncSession,
    *,
    notification: Notification,
    quiet_hours: QuietHours | None,
    window: timedelta,
) -> Push:
    """Put ``notification`` in the user's open push, or open one due when the window closes."""
    for _ in range(OPEN_PUSH_ATTEMPTS):
        open_push = await repository.open_push(session, notification.user_id)
        if open_push is not None:
            break
        now = clock.now()
        due = now + window
        if quiet_hours is not None and quiet_hours.contains(now):
            due = max(due, quiet_hours.ends_after(now))
        candidate = Push(
            organization_id=notification.organization_id,
            user_id=notification.user_id,
            due_at=due,
            created_at=now,
        )
        try:
            async with savepoint(session):
                session.add(candidate)
                await session.flush()
        except IntegrityError:
            # Another delivery opened one for this user at the same moment: join it, or, if
            # it went out meanwhile (a short window), open the next one.
            continue
        await publish(
            PushScheduled(
                organization_id=candidate.organization_id,
                push_id=candidate.id,
                user_id=candidate.user_id,
                due_at=candidate.due_at,
            )
        )
        open_push = candidate
        break
    else:
        raise PushContended(f"user {notification.user_id}: could not open or join a push")
    notification.push_id = open_push.id
    await session.flush()
    return open_push


async def send_push(
    session: AsyncSession,
    *,
    push_id: uuid.UUID,
    gateway: PushGateway,
    idempotency_key: str,
) -> Push | None:
    """Send a due push to every active device of its user; return it, or None if gone.

    Raises:
        Defer: the window or the quiet hours have not ended yet.
        PushUnavailable: FCM failed every message with a retryable error.
    """
    due = await repository.due_push(session, push_id)
    if due is None or due.push.status != "scheduled":
        return None
    push, targets = due.push, due.targets
    quiet_hours = preferences.quiet_hours_of(due.preference)
    enabled = preferences.enabled_modules(due.preference)
    now = clock.now()
    if push.due_at > now:
        raise Defer(push.due_at, "the summary window is open")
    if quiet_hours is not None and quiet_hours.contains(now):
        raise Defer(quiet_hours.ends_after(now), "the user's quiet hours")
    # Everything was read in one query before the FCM call: on SQLite the first write takes
    # the process's writer lock, which must not be held across it.
    pending = [
        n for n in due.items if n.read_at is None and n.resolved_at is None and n.module in enabled
    ]
    results: list[SendResult] = []
    if pending and targets:
        content = compose(push, pending, idempotency_key=idempotency_key)
        results = await _send(gateway, content, targets)
        _raise_if_all_transient(results)
    sent = bool(results)
    statuses = {
        n.id: ("sent" if sent else "skipped")
        if n in pending
        else ("skipped" if n.module in enabled else "off")
        for n in due.items
    }
    late = await repository.settle_push(
        session,
        push,
        statuses,
        {
            "status": "sent" if sent else "skipped",
            "sent_at": now,
            "notifications": len(pending),
            "devices": len(targets),
            "delivered": sum(1 for r in results if r.success),
            "idempotency_key": idempotency_key if sent else None,
        },
    )
    failing = await _settle(session, targets, results)
    if failing:
        await _schedule_resend(push, failing, round=1, now=now)
    if late:
        await _reschedule_late_arrivals(session, push, late, now=now)
    logger.info(
        "push %s %s: %d notification(s) to %d of %d device(s)",
        push.id,
        push.status,
        push.notifications,
        push.delivered,
        push.devices,
    )
    return push


async def resend_push(
    session: AsyncSession,
    *,
    push_id: uuid.UUID,
    device_ids: Sequence[uuid.UUID],
    round: int,
    gateway: PushGateway,
) -> int:
    """Send a sent push again to the devices FCM failed with an error that may pass.

    The message is the first one to the letter (title, body, data with the first delivery's
    idempotency key, collapse key), so a phone that got it already shows it once. Devices that
    succeeded are never sent it again; dead tokens are deactivated; devices still failing get
    another round after a longer wait. Nothing is sent when every notification of the push has
    been read or resolved meanwhile, or none of the devices is active any more.

    Returns:
        How many devices got it this time.

    Raises:
        PushUnavailable: FCM failed every message with a retryable error (the delivery retries).
    """
    push = await repository.get_push(session, push_id)
    if push is None or push.status != "sent" or push.idempotency_key is None:
        return 0
    # Read everything before the FCM call (SQLite's writer lock), as send_push does.
    sent = [
        n
        for n in await repository.notifications_of_push(session, push.id)
        if n.push_status == "sent"
    ]
    targets = await repository.active_devices_among(session, push.user_id, device_ids)
    if not targets or all(n.read_at or n.resolved_at for n in sent):
        return 0
    content = compose(push, sent, idempotency_key=push.idempotency_key)
    results = await _send(gateway, content, targets)
    _raise_if_all_transient(results)
    failing = await _settle(session, targets, results)
    delivered = sum(1 for r in results if r.success)
    push.delivered += delivered
    await session.flush()
    if failing:
        await _schedule_resend(push, failing, round=round + 1, now=clock.now())
    logger.info(
        "push %s resent (round %d): %d of %d device(s), %d still failing",
        push.id,
        round,
        delivered,
        len(targets),
        len(failing),
    )
    return delivered


def _raise_if_all_transient(results: Sequence[SendResult]) -> None:
    """Nothing to keep when every message failed with an error that may pass: retry it all."""
    if results and all(r.retryable for r in results):
        first = results[0]
        raise PushUnavailable(
            f"FCM failed all {len(results)} messages: {first.error_code} {first.error}"
        )


async def _settle(
    session: AsyncSession, targets: Sequence[Target], results: Sequence[SendResult]
) -> list[Target]:
    """Deactivate the dead tokens; return the devices whose message may pass if sent again."""
    failing = []
    for target, result in zip(targets, results, strict=False):
        if result.dead:
            await devices.deactivate_dead_device(
                session, target.id, reason=(result.error_code or "invalid").lower()
            )
        elif result.retryable:
            failing.append(target)
    return failing


async def _schedule_resend(
    push: Push, failing: Sequence[Target], *, round: int, now: datetime
) -> None:
    """Resend ``push`` to ``failing`` after the backoff of ``round`` (a durable delivery)."""
    delay = FCM_RETRY.delay(round, random.random())
    await publish(
        PushResendScheduled(
            organization_id=push.organization_id,
            push_id=push.id,
            user_id=push.user_id,
            device_ids=tuple(d.id for d in failing),
            round=round,
            due_at=now + timedelta(seconds=delay),
        )
    )
    logger.info(
        "push %s: %d device(s) failed with an error that may pass; resend in %.1f s",
        push.id,
        len(failing),
        delay,
    )


async def _reschedule_late_arrivals(
    session: AsyncSession, push: Push, late: Sequence[uuid.UUID], *, now: datetime
) -> None:
    """Give notifications that joined ``push`` after it was read a push of their own (SQLite).

    On PostgreSQL the push row is locked while it is sent, so a notification arriving then
    waits and opens the next push. SQLite has no row locks: one may join between our read and
    our first write; once we write, the writer lock keeps any other from joining.
    """
    follow_up = Push(
        organization_id=push.organization_id, user_id=push.user_id, due_at=now, created_at=now
    )
    session.add(follow_up)
    await session.flush()
    await repository.move_to_push(session, late, follow_up.id)
    await publish(
        PushScheduled(
            organization_id=follow_up.organization_id,
            push_id=follow_up.id,
            user_id=follow_up.user_id,
            due_at=follow_up.due_at,
        )
    )


@dataclass(frozen=True, slots=True)
class PushContent:
    """What every device of one push shows."""

    title: str
    body: str
    data: dict[str, str]
    collapse_key: str

    def to(self, token: str) -> PushMessage:
        """Return the message for one device."""
        return PushMessage(
            token=token,
            title=self.title,
            body=self.body,
            data=self.data,
            collapse_key=self.collapse_key,
        )


def compose(push: Push, pending: Sequence[PushItem], *, idempotency_key: str) -> PushContent:
    """Return one task's push, or the summary of several ("3 new approvals: 2 procurement...")."""
    collapse = f"push-{push.id.hex}"
    data = {"push_id": str(push.id), "idempotency_key": idempotency_key}
    if len(pending) == 1:
        (only,) = pending
        return PushContent(
            title=only.title,
            body=only.body or f"New {only.module} approval",
            data={
                **data,
                "kind": "task",
                "module": only.module,
                "task_id": only.task_id,
                "notification_id": str(only.id),
            },
            collapse_key=collapse,
        )
    counts = Counter(n.module for n in pending)
    parts = [f"{counts[m]} {m}" for m in sorted(counts, key=lambda m: (-counts[m], _order(m)))]
    return PushContent(
        title=f"{len(pending)} new approvals",
        body=", ".join(parts),
        data={**data, "kind": "summary", "count": str(len(pending))},
        collapse_key=collapse,
    )


def _order(module: str) -> int:
    return MODULE_ORDER.index(module) if module in MODULE_ORDER else len(MODULE_ORDER)


async def _send(
    gateway: PushGateway, content: PushContent, targets: Sequence[Target]
) -> list[SendResult]:
    results: list[SendResult] = []
    for start in range(0, len(targets), MAX_BATCH):
        messages = [content.to(d.token) for d in targets[start : start + MAX_BATCH]]
        # One span per batch handed to FCM, in the push delivery's trace; the SDK's HTTP
        # requests (httpx, one per message) are its children.
        attributes: dict[str, str | int] = {
            "rpc.system": "fcm",
            "workflow_hub.push.provider": gateway.name,
            "workflow_hub.push.messages": len(messages),
        }
        with span(SEND_SPAN, attributes, client=True) as current:
            batch = await gateway.send_batch(messages)
            current.set_attribute("workflow_hub.push.sent", batch.success_count)
            current.set_attribute("workflow_hub.push.failed", len(messages) - batch.success_count)
        results.extend(batch.results)
    for result in results:
        PUSH_SENDS.labels(_outcome(result)).inc()
    return results


def _outcome(result: SendResult) -> str:
    if result.success:
        return "sent"
    if result.dead:
        return "token_dead"
    return "retryable" if result.retryable else "failed"

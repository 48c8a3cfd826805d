"""Queries of the notification module. A user's devices and notifications are theirs alone."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import (
    CursorResult,
    Table,
    and_,
    bindparam,
    case,
    delete,
    exists,
    func,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from app.modules.notification.models import (
    Device,
    DeviceTopic,
    Notification,
    Preference,
    Push,
    TaskClosure,
)

# -- devices -----------------------------------------------------------------------------------


async def get_device_by_digest(session: AsyncSession, digest: str) -> Device | None:
    query = select(Device).where(Device.token_digest == digest).with_for_update()
    return (await session.scalars(query)).one_or_none()


async def get_device(
    session: AsyncSession, device_id: uuid.UUID, *, user_id: uuid.UUID | None = None
) -> Device | None:
    """Return the device with this id (only if it is ``user_id``'s, when given)."""
    query = select(Device).where(Device.id == device_id)
    if user_id is not None:
        query = query.where(Device.user_id == user_id)
    return (await session.scalars(query)).one_or_none()


async def list_devices(
    session: AsyncSession, user_id: uuid.UUID, *, limit: int, offset: int
) -> tuple[Sequence[Device], int]:
    """Return one page of the user's active devices (newest first) and how many there are."""
    where = (Device.user_id == user_id, Device.is_active.is_(True))
    total = await session.scalar(select(func.count()).select_from(Device).where(*where))
    query = (
        select(Device)
        .where(*where)
        .order_by(Device.created_at.desc(), Device.id)
        .limit(limit)
        .offset(offset)
    )
    return (await session.scalars(query)).all(), total or 0


async def active_devices(session: AsyncSession, user_id: uuid.UUID) -> Sequence[Device]:
    query = (
        select(Device)
        .where(Device.user_id == user_id, Device.is_active.is_(True))
        .order_by(Device.created_at)
    )
    return (await session.scalars(query)).all()


class Target(NamedTuple):
    """An active device of a push's user: where one message goes."""

    id: uuid.UUID
    token: str


async def active_devices_among(
    session: AsyncSession, user_id: uuid.UUID, device_ids: Sequence[uuid.UUID]
) -> list[Target]:
    """Return those of ``device_ids`` that are the user's and still active."""
    query = (
        select(Device.id, Device.token)
        .where(Device.user_id == user_id, Device.is_active.is_(True), Device.id.in_(device_ids))
        .order_by(Device.created_at)
    )
    return [Target(*row) for row in await session.execute(query)]


async def devices_of_session(
    session: AsyncSession, user_id: uuid.UUID, session_id: uuid.UUID
) -> Sequence[Device]:
    query = select(Device).where(
        Device.user_id == user_id, Device.session_id == session_id, Device.is_active.is_(True)
    )
    return (await session.scalars(query)).all()


async def device_topics(session: AsyncSession, device_id: uuid.UUID) -> list[str]:
    query = select(DeviceTopic.topic).where(DeviceTopic.device_id == device_id)
    return sorted((await session.scalars(query)).all())


async def record_topic(session: AsyncSession, device_id: uuid.UUID, topic: str) -> None:
    session.add(DeviceTopic(device_id=device_id, topic=topic))
    await session.flush()


async def forget_topics(
    session: AsyncSession, device_id: uuid.UUID, topics: Sequence[str] | None = None
) -> None:
    """Forget the device's recorded topics (all of them when ``topics`` is None)."""
    statement = delete(DeviceTopic).where(DeviceTopic.device_id == device_id)
    if topics is not None:
        statement = statement.where(DeviceTopic.topic.in_(topics))
    await session.execute(statement)


# -- notifications -----------------------------------------------------------------------------


async def task_state(
    session: AsyncSession, user_id: uuid.UUID, module: str, task_id: str
) -> tuple[bool, datetime | None]:
    """Whether the user has a notification of the task, and when the task was closed before
    one was stored (a closure), in one query."""
    stored = exists().where(
        Notification.user_id == user_id,
        Notification.module == module,
        Notification.task_id == task_id,
    )
    closed = (
        select(TaskClosure.closed_at)
        .where(
            TaskClosure.user_id == user_id,
            TaskClosure.module == module,
            TaskClosure.task_id == task_id,
        )
        .scalar_subquery()
    )
    row = (await session.execute(select(stored, closed))).one()
    return bool(row[0]), row[1]


async def record_closure(session: AsyncSession, closure: TaskClosure) -> None:
    """Remember a task closed before its notification was stored (once: a replay adds none)."""
    existing = await session.get(TaskClosure, (closure.user_id, closure.module, closure.task_id))
    if existing is None:
        session.add(closure)
        await session.flush()


async def get_notification(
    session: AsyncSession, notification_id: uuid.UUID, user_id: uuid.UUID
) -> Notification | None:
    query = select(Notification).where(
        Notification.id == notification_id, Notification.user_id == user_id
    )
    return (await session.scalars(query)).one_or_none()


def _unread() -> tuple[object, ...]:
    # The same terms as the partial index ix_notifications_unread, so the planner uses it.
    return (Notification.read_at.is_(None), Notification.resolved_at.is_(None))


async def list_notifications(
    session: AsyncSession, user_id: uuid.UUID, *, unread: bool, limit: int, offset: int
) -> tuple[Sequence[Notification], int]:
    """Return one page of the user's notifications, newest first, and how many match."""
    where = [Notification.user_id == user_id]
    if unread:
        where.extend(_unread())  # type: ignore[arg-type]
    total = await session.scalar(select(func.count()).select_from(Notification).where(*where))
    query = (
        select(Notification)
        .where(*where)
        .order_by(Notification.created_at.desc(), Notification.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return (await session.scalars(query)).all(), total or 0


_NOTIFICATIONS = cast(Table, Notification.__table__)
_PUSHES = cast(Table, Push.__table__)
UNREAD_COUNT = (
    select(func.count())
    .select_from(_NOTIFICATIONS)
    .where(
        _NOTIFICATIONS.c.user_id == bindparam("user_id"),
        _NOTIFICATIONS.c.read_at.is_(None),
        _NOTIFICATIONS.c.resolved_at.is_(None),
    )
)
"""The badge: the terms of the partial index ``ix_notifications_unread``, so it reads the
index alone. A Core statement on the session's connection: the ORM has nothing to add."""


async def unread_count(session: AsyncSession, user_id: uuid.UUID) -> int:
    """Count the user's unread notifications: one query on the partial index."""
    connection = await session.connection()
    return (await connection.scalar(UNREAD_COUNT, {"user_id": user_id})) or 0


async def mark_all_read(session: AsyncSession, user_id: uuid.UUID, *, at: datetime) -> int:
    statement = (
        update(Notification)
        .where(Notification.user_id == user_id, *_unread())  # type: ignore[arg-type]
        .values(read_at=at)
    )
    result: CursorResult[tuple[()]] = await session.execute(statement)  # type: ignore[assignment]
    return result.rowcount or 0


async def resolve(
    session: AsyncSession, user_id: uuid.UUID, module: str, task_id: str, *, at: datetime
) -> int:
    statement = (
        update(Notification)
        .where(
            Notification.user_id == user_id,
            Notification.module == module,
            Notification.task_id == task_id,
            Notification.resolved_at.is_(None),
        )
        .values(resolved_at=at)
    )
    result: CursorResult[tuple[()]] = await session.execute(statement)  # type: ignore[assignment]
    return result.rowcount or 0


async def prune_before(
    session: AsyncSession, organization_id: uuid.UUID, cutoff: datetime, *, batch: int
) -> int:
    """Delete up to ``batch`` of the organisation's notifications created before ``cutoff``."""
    ids = (
        select(Notification.id)
        .where(Notification.organization_id == organization_id, Notification.created_at < cutoff)
        .limit(batch)
    )
    statement = delete(Notification).where(Notification.id.in_(ids))
    result: CursorResult[tuple[()]] = await session.execute(statement)  # type: ignore[assignment]
    return result.rowcount or 0


async def prune_closures_before(
    session: AsyncSession, organization_id: uuid.UUID, cutoff: datetime
) -> int:
    statement = delete(TaskClosure).where(
        TaskClosure.organization_id == organization_id, TaskClosure.closed_at < cutoff
    )
    result: CursorResult[tuple[()]] = await session.execute(statement)  # type: ignore[assignment]
    return result.rowcount or 0


async def prune_pushes_before(
    session: AsyncSession, organization_id: uuid.UUID, cutoff: datetime
) -> int:
    statement = delete(Push).where(
        Push.organization_id == organization_id,
        Push.status != "scheduled",
        Push.created_at < cutoff,
    )
    result: CursorResult[tuple[()]] = await session.execute(statement)  # type: ignore[assignment]
    return result.rowcount or 0


# -- pushes ------------------------------------------------------------------------------------


async def sent_push_totals(
    session: AsyncSession, organization_id: uuid.UUID, since: datetime
) -> tuple[int, int, int]:
    """Pushes of the organisation sent since ``since``: how many, notifications, deliveries."""
    query = select(
        func.count(),
        func.coalesce(func.sum(Push.notifications), 0),
        func.coalesce(func.sum(Push.delivered), 0),
    ).where(Push.organization_id == organization_id, Push.status == "sent", Push.sent_at >= since)
    pushes, notifications, delivered = (await session.execute(query)).one()
    return int(pushes), int(notifications), int(delivered)


async def open_push(session: AsyncSession, user_id: uuid.UUID) -> Push | None:
    """Return the user's scheduled push, locked until the transaction ends (PostgreSQL)."""
    query = (
        select(Push).where(Push.user_id == user_id, Push.status == "scheduled").with_for_update()
    )
    return (await session.scalars(query)).one_or_none()


async def get_push(session: AsyncSession, push_id: uuid.UUID) -> Push | None:
    return await session.get(Push, push_id)


class PushItem(NamedTuple):
    """A notification of a push, as the push reads it (plain columns, no ORM object)."""

    id: uuid.UUID
    module: str
    task_id: str
    title: str
    body: str | None
    read_at: datetime | None
    resolved_at: datetime | None
    push_status: str


_ITEM_COLUMNS = (
    _NOTIFICATIONS.c.id,
    _NOTIFICATIONS.c.module,
    _NOTIFICATIONS.c.task_id,
    _NOTIFICATIONS.c.title,
    _NOTIFICATIONS.c.body,
    _NOTIFICATIONS.c.read_at,
    _NOTIFICATIONS.c.resolved_at,
    _NOTIFICATIONS.c.push_status,
)


@dataclass(frozen=True, slots=True)
class DuePush:
    """What sending a push reads, in one query."""

    push: Push
    preference: Preference | None
    targets: list[Target]
    """The user's active devices, oldest first."""
    items: list[PushItem]
    """The push's notifications, oldest first."""


async def due_push(session: AsyncSession, push_id: uuid.UUID) -> DuePush | None:
    """Return the push, locked (PostgreSQL), with its user's preferences, active devices and
    notifications: one query, a row per device and notification."""
    query = (
        select(Push, Preference, Device.id, Device.token, *_ITEM_COLUMNS)
        .outerjoin(Preference, Preference.user_id == Push.user_id)
        .outerjoin(Device, and_(Device.user_id == Push.user_id, Device.is_active.is_(True)))
        .outerjoin(_NOTIFICATIONS, _NOTIFICATIONS.c.push_id == Push.id)
        .where(Push.id == push_id)
        .order_by(Device.created_at, Device.id, _NOTIFICATIONS.c.created_at, _NOTIFICATIONS.c.id)
        .with_for_update(of=Push)
    )
    rows = (await session.execute(query)).all()
    if not rows:
        return None
    targets = list(dict.fromkeys(Target(r[2], r[3]) for r in rows if r[2] is not None))
    items = list(dict.fromkeys(PushItem(*r[4:]) for r in rows if r[4] is not None))
    return DuePush(push=rows[0][0], preference=rows[0][1], targets=targets, items=items)


async def notifications_of_push(session: AsyncSession, push_id: uuid.UUID) -> list[PushItem]:
    query = (
        select(*_ITEM_COLUMNS)
        .where(_NOTIFICATIONS.c.push_id == push_id)
        .order_by(_NOTIFICATIONS.c.created_at, _NOTIFICATIONS.c.id)
    )
    return [PushItem(*row) for row in await session.execute(query)]


def _statuses_update(push_id: uuid.UUID, statuses: Mapping[uuid.UUID, str]) -> Any:
    by_status: dict[str, list[uuid.UUID]] = {}
    for notification_id, status in statuses.items():
        by_status.setdefault(status, []).append(notification_id)
    column = _NOTIFICATIONS.c.push_status
    value = (
        case(*((_NOTIFICATIONS.c.id.in_(ids), s) for s, ids in by_status.items()), else_=column)
        if by_status
        else column
    )
    return (
        update(_NOTIFICATIONS)
        .where(_NOTIFICATIONS.c.push_id == push_id)
        .values(push_status=value)
        .returning(_NOTIFICATIONS.c.id)
    )


async def settle_push(
    session: AsyncSession,
    push: Push,
    statuses: Mapping[uuid.UUID, str],
    values: Mapping[str, Any],
) -> list[uuid.UUID]:
    """Write the outcome of a send: ``values`` on the push, ``statuses`` on its notifications.

    One statement on PostgreSQL (the notifications' update in a CTE); two on SQLite, where the
    first takes the writer lock and finds what joined the push since it was read.

    Returns:
        The notifications that joined the push after it was read (none on PostgreSQL, where
        the push row is locked): they are left pending.
    """
    notifications = _statuses_update(push.id, statuses)
    pushes = update(_PUSHES).where(_PUSHES.c.id == push.id).values(**values)
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(pushes.add_cte(notifications.cte("settled")))
        joined: list[uuid.UUID] = []
    else:
        ids = (await session.execute(notifications)).scalars()
        joined = [notification_id for notification_id in ids if notification_id not in statuses]
        await session.execute(pushes)
    for key, value in values.items():  # the loaded push shows what was written
        set_committed_value(push, key, value)
    return joined


async def move_to_push(
    session: AsyncSession, notification_ids: Sequence[uuid.UUID], push_id: uuid.UUID
) -> None:
    await session.execute(
        update(_NOTIFICATIONS)
        .where(_NOTIFICATIONS.c.id.in_(notification_ids))
        .values(push_id=push_id)
    )


# -- preferences -------------------------------------------------------------------------------


async def get_preference(session: AsyncSession, user_id: uuid.UUID) -> Preference | None:
    return await session.get(Preference, user_id)

"""The inbox's queries, over the module's own tables (given as :class:`InboxTables`)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    Integer,
    String,
    bindparam,
    delete,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.core.inbox.models import PENDING
from app.core.inbox.source import InboxUser, SourceTask

CHANGEABLE = ("title", "summary", "priority", "due_at", "assigned_at", "source_ref")
"""What a later listing may change about a task (``updatedDate`` is kept as well)."""


@dataclass(frozen=True, slots=True)
class InboxTables:
    """A module's four inbox tables (ORM classes built on :mod:`app.core.inbox.models`)."""

    user: type[Any]
    task: type[Any]
    approval: type[Any]
    idempotency: type[Any]


@dataclass
class ListingChanges:
    """What one sync changed: the rows it inserted, updated and closed."""

    received: list[Any] = field(default_factory=list)
    updated: list[Any] = field(default_factory=list)
    closed: list[Any] = field(default_factory=list)
    confirmed: int = 0


# -- the user's inbox --------------------------------------------------------------------------


async def get_user(session: AsyncSession, t: InboxTables, org: uuid.UUID, user: uuid.UUID) -> Any:
    row = await session.get(t.user, user)
    return row if row is not None and row.organization_id == org else None


async def remember_user(session: AsyncSession, t: InboxTables, user: InboxUser) -> Any:
    """Insert or update the user's identity in the inbox's read model."""
    row = await get_user(session, t, user.organization_id, user.user_id)
    if row is None:
        row = t.user(organization_id=user.organization_id, user_id=user.user_id)
        session.add(row)
    row.email = user.email
    row.oracle_username = user.oracle_username
    row.person_number = user.person_number
    row.user_type = user.user_type
    row.is_active = user.is_active
    await session.flush()
    return row


def inbox_user(row: Any) -> InboxUser:
    return InboxUser(
        organization_id=row.organization_id,
        user_id=row.user_id,
        email=row.email,
        oracle_username=row.oracle_username,
        person_number=row.person_number,
        user_type=row.user_type,
        is_active=row.is_active,
    )


async def mark_sync_failed(
    session: AsyncSession, t: InboxTables, user: InboxUser, *, code: str, now: datetime
) -> None:
    """Record a failed sync; ``synced_at`` keeps the last good one."""
    row = await get_user(session, t, user.organization_id, user.user_id)
    if row is None:
        return
    row.sync_attempted_at = now
    row.sync_error = code[:100]
    await session.flush()


# -- sync --------------------------------------------------------------------------------------


SYNC_COLUMNS = ("id", "task_id", "claimed_until", "source_updated_at", *CHANGEABLE)
"""What a sync compares of a pending row (read as plain columns, not ORM objects)."""


@dataclass(frozen=True, slots=True)
class ClosedTask:
    """A row a sync closed: what its ``<m>.task.closed`` event says."""

    organization_id: uuid.UUID
    user_id: uuid.UUID
    task_id: str
    close_reason: str


@lru_cache(maxsize=64)
def _pending_statement(t: InboxTables) -> Any:
    T = t.task
    return select(*(getattr(T, name) for name in SYNC_COLUMNS)).where(
        T.organization_id == bindparam("org", type_=T.organization_id.type),
        T.user_id == bindparam("user", type_=T.user_id.type),
        T.status == PENDING,
    )


async def pending_tasks(conn: AsyncConnection, t: InboxTables, user: InboxUser) -> list[Any]:
    """Return the user's pending tasks as plain rows (``SYNC_COLUMNS``): what a sync compares
    the listing with, read while the source is still answering."""
    result = await conn.execute(
        _pending_statement(t), {"org": user.organization_id, "user": user.user_id}
    )
    return list(result)


async def apply_listing(
    session: AsyncSession,
    t: InboxTables,
    user: InboxUser,
    listed: Sequence[SourceTask],
    *,
    pending: Sequence[Any],
    now: datetime,
    close_reason: str,
) -> ListingChanges:
    """Diff the source's listing against the inbox: insert, update, close; stamp ``synced_at``.

    ``pending`` is the inbox's pending rows (:func:`pending_tasks`), read before the listing
    arrived, so every write that depends on them is conditional: a row closes only while it is
    still pending and unclaimed (an action that finished or started meanwhile keeps its
    outcome), and a listed task that was not pending then is looked up again here. A steady
    sync, where nothing changed, writes only the rows' ``synced_at`` and the inbox's (see
    also :func:`confirm_listing`, the same without an ORM session).
    """
    T = t.task
    by_id = {task.task_id: task for task in listed}
    known = {row.task_id: row for row in pending}
    scope = (T.organization_id == user.organization_id, T.user_id == user.user_id)
    changes = ListingChanges()
    others = [task_id for task_id in by_id if task_id not in known]
    if others:
        await _apply_others(session, t, user, [by_id[i] for i in others], changes, now=now)
    for task_id, row in known.items():
        task = by_id.get(task_id)
        if task is None:
            continue
        if values := _changed(row, task):
            await session.execute(
                update(T)
                .where(T.id == row.id)
                .values(values)
                .execution_options(synchronize_session=False)
            )
            changes.updated.append(row)
    for task_id, row in known.items():
        if task_id in by_id or (row.claimed_until is not None and row.claimed_until > now):
            continue  # listed, or an action is under way (its outcome closes the row)
        result = await session.execute(
            update(T)
            .where(
                T.id == row.id,
                T.status == PENDING,
                or_(T.claimed_until.is_(None), T.claimed_until <= now),
            )
            .values(status="closed", close_reason=close_reason, closed_at=now)
            .execution_options(synchronize_session=False)
        )
        if getattr(result, "rowcount", 0):
            changes.closed.append(
                ClosedTask(user.organization_id, user.user_id, task_id, close_reason)
            )
    chunks = _chunks(list(by_id), 500)
    confirmations = [
        update(T)
        .where(*scope, T.task_id.in_(chunk))
        .values(synced_at=now)
        .execution_options(synchronize_session=False)
        for chunk in chunks
    ]
    # On PostgreSQL the last confirmation rides with the inbox's stamp (a data-modifying CTE):
    # a steady sync is one statement.
    along = confirmations.pop() if confirmations and _is_postgres(session) else None
    for confirmation in confirmations:
        await session.execute(confirmation)
    changes.confirmed = len(by_id)
    await _stamp_inbox(session, t, user, now=now, along=along)
    return changes


def _is_postgres(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _changed(row: Any, task: SourceTask) -> dict[str, Any]:
    """What the listing changes about a known row (``source_updated_at`` included)."""
    values = {n: getattr(task, n) for n in CHANGEABLE if getattr(row, n) != getattr(task, n)}
    if task.updated_at is not None and row.source_updated_at != task.updated_at:
        values["source_updated_at"] = task.updated_at
    return values


def is_steady(listed: Sequence[SourceTask], pending: Sequence[Any]) -> bool:
    """Whether the listing changes nothing but ``synced_at``: it lists exactly the pending
    rows, none of them changed."""
    known = {row.task_id: row for row in pending}
    if len(listed) != len(known):
        return False
    for task in listed:
        row = known.get(task.task_id)
        if row is None or _changed(row, task):
            return False
    return True


async def confirm_listing(
    conn: AsyncConnection,
    t: InboxTables,
    user: InboxUser,
    listed: Sequence[SourceTask],
    *,
    now: datetime,
) -> bool:
    """A steady sync's writes (see :func:`is_steady`): the rows' and the inbox's ``synced_at``,
    one statement on PostgreSQL (a CTE), two on SQLite. False when the user has no inbox row
    yet (then nothing is stamped but the rows; :func:`apply_listing` does the rest)."""
    T = t.task
    ids = [task.task_id for task in listed]
    confirmation = None
    if ids:
        confirmation = (
            update(T)
            .where(
                T.organization_id == user.organization_id,
                T.user_id == user.user_id,
                T.task_id.in_(ids),
            )
            .values(synced_at=now)
        )
    stamp = _stamp_statement(t, user, now=now)
    if confirmation is not None and conn.dialect.name == "postgresql":
        stamp = stamp.add_cte(confirmation.cte("confirmed"))
    elif confirmation is not None:
        await conn.execute(confirmation)
    result = await conn.execute(stamp)
    return bool(getattr(result, "rowcount", 0))


async def _apply_others(
    session: AsyncSession,
    t: InboxTables,
    user: InboxUser,
    listed: Sequence[SourceTask],
    changes: ListingChanges,
    *,
    now: datetime,
) -> None:
    """Listed tasks that were not pending when the inbox was read: new ones are inserted; a
    known one (closed and listed again, acted on here, or inserted by another sync since) is
    updated, and a closed one reopens."""
    T = t.task
    scope = (T.organization_id == user.organization_id, T.user_id == user.user_id)
    rows: dict[str, Any] = {}
    for chunk in _chunks([task.task_id for task in listed], 500):
        found = await session.scalars(select(T).where(*scope, T.task_id.in_(chunk)))
        rows.update((row.task_id, row) for row in found)
    for task in listed:
        row = rows.get(task.task_id)
        if row is None:
            row = T(
                organization_id=user.organization_id,
                user_id=user.user_id,
                task_id=task.task_id,
                status=PENDING,
                sort_at=task.assigned_at or now,
                synced_at=now,
                source_updated_at=task.updated_at,
                **{name: getattr(task, name) for name in CHANGEABLE},
            )
            session.add(row)
            changes.received.append(row)
            continue
        changed = [n for n in CHANGEABLE if getattr(row, n) != getattr(task, n)]
        for name in changed:
            setattr(row, name, getattr(task, name))
        if task.updated_at is not None and row.source_updated_at != task.updated_at:
            row.source_updated_at = task.updated_at
            changed.append("source_updated_at")
        if row.status == "closed":  # listed again (reassigned back, say)
            row.status, row.close_reason, row.closed_at = PENDING, None, None
            changed.append("status")
        if changed:
            changes.updated.append(row)
    await session.flush()


async def _stamp_inbox(
    session: AsyncSession,
    t: InboxTables,
    user: InboxUser,
    *,
    now: datetime,
    along: Any = None,
) -> None:
    """Stamp the user's inbox as synced (one UPDATE; an INSERT the first time), taking the
    identity the sync knows; ``along`` is an UPDATE of the rows run in the same statement (a
    CTE, PostgreSQL only)."""
    U = t.user
    stamp = _stamp_statement(t, user, now=now)
    if along is not None:
        stamp = stamp.add_cte(along.cte("confirmed"))
    result = await session.execute(stamp)
    if not getattr(result, "rowcount", 0):
        session.add(
            U(
                organization_id=user.organization_id,
                user_id=user.user_id,
                user_type=user.user_type,
                is_active=user.is_active,
                **_stamp_values(user, now=now),
            )
        )
        await session.flush()


def _stamp_values(user: InboxUser, *, now: datetime) -> dict[str, Any]:
    """The inbox's columns a good sync sets: its times, and the identity the sync knows."""
    values: dict[str, Any] = {"synced_at": now, "sync_attempted_at": now, "sync_error": None}
    for name in ("email", "oracle_username", "person_number"):
        if getattr(user, name) is not None:
            values[name] = getattr(user, name)
    return values


def _stamp_statement(t: InboxTables, user: InboxUser, *, now: datetime) -> Any:
    U = t.user
    return (
        update(U)
        .where(U.user_id == user.user_id, U.organization_id == user.organization_id)
        .values(_stamp_values(user, now=now))
    )


def _chunks(values: list[str], size: int) -> list[list[str]]:
    return [values[i : i + size] for i in range(0, len(values), size)]


# -- read --------------------------------------------------------------------------------------


PAGE_COLUMNS = (
    "id",
    "task_id",
    "title",
    "summary",
    "status",
    "close_reason",
    "priority",
    "assigned_at",
    "due_at",
    "synced_at",
    "closed_at",
)
"""What a list item shows (rows of the list are read as plain columns, not ORM objects)."""


@dataclass(frozen=True, slots=True)
class TaskPageRows:
    """One page of a user's tasks as rows (dicts of ``PAGE_COLUMNS`` and ``source``), the total
    and the inbox's ``synced_at``."""

    rows: Sequence[dict[str, Any]]
    total: int
    synced_at: datetime | None


@lru_cache(maxsize=64)
def _page_statements(t: InboxTables, source: str, pending_only: bool) -> tuple[Any, Any]:
    """The page query and its empty-page fallback, built once: every value is a bound
    parameter (``org``, ``user``, ``limit``, ``offset``), so each request only binds them and
    reuses the statement's cache key and compiled form."""
    T, U = t.task, t.user
    org, user = (
        bindparam("org", type_=T.organization_id.type),
        bindparam("user", type_=T.user_id.type),
    )
    conditions = [T.organization_id == org, T.user_id == user]
    if pending_only:
        conditions.append(T.status == PENDING)
    total = select(func.count()).select_from(T).where(*conditions).scalar_subquery()
    inbox_synced = select(U.synced_at).where(U.organization_id == org, U.user_id == user)
    synced = inbox_synced.scalar_subquery()
    page = (
        select(
            *(getattr(T, name) for name in PAGE_COLUMNS),
            literal(source, String).label("source"),
            total.label("total"),
            synced.label("inbox_synced_at"),
        )
        .where(*conditions)
        .order_by(T.sort_at.desc(), T.id.desc())
        .limit(bindparam("limit", type_=Integer))
        .offset(bindparam("offset", type_=Integer))
    )
    empty = select(total.label("total"), synced.label("inbox_synced_at"))
    return page, empty


async def task_page(
    conn: AsyncConnection,
    t: InboxTables,
    org: uuid.UUID,
    user: uuid.UUID,
    *,
    source: str,
    pending_only: bool,
    limit: int,
    offset: int,
) -> TaskPageRows:
    """Return one page of the user's tasks (newest first), the total, and the inbox's
    ``synced_at``, in one round trip (two when the page is empty)."""
    page, empty = _page_statements(t, source, pending_only)
    params = {"org": org, "user": user, "limit": limit, "offset": offset}
    result = await conn.execute(page, params)
    keys = tuple(result.keys())
    rows = [dict(zip(keys, row, strict=True)) for row in result]  # built in C, read in Rust
    if rows:
        return TaskPageRows(rows, int(rows[0]["total"]), rows[0]["inbox_synced_at"])
    found = (await conn.execute(empty, params)).one()
    return TaskPageRows([], int(found.total or 0), found.inbox_synced_at)


async def get_task(
    session: AsyncSession, t: InboxTables, org: uuid.UUID, user: uuid.UUID, row_id: uuid.UUID
) -> Any:
    """Return the user's task with this id (anyone else's finds nothing)."""
    query = select(t.task).where(
        t.task.id == row_id, t.task.organization_id == org, t.task.user_id == user
    )
    return (await session.scalars(query)).one_or_none()


# -- act ---------------------------------------------------------------------------------------


async def claim_task(
    session: AsyncSession, t: InboxTables, row_id: uuid.UUID, *, now: datetime, until: datetime
) -> bool:
    """Take the task for one action, atomically: False when it is decided or already taken."""
    T = t.task
    result = await session.execute(
        update(T)
        .where(
            T.id == row_id,
            T.status == PENDING,
            or_(T.claimed_until.is_(None), T.claimed_until <= now),
        )
        .values(claimed_until=until)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


async def get_key(
    session: AsyncSession, t: InboxTables, org: uuid.UUID, user: uuid.UUID, key: str
) -> Any:
    query = select(t.idempotency).where(
        t.idempotency.organization_id == org,
        t.idempotency.user_id == user,
        t.idempotency.key == key,
    )
    return (await session.scalars(query)).one_or_none()


async def prune_keys(
    session: AsyncSession, t: InboxTables, org: uuid.UUID, *, before: datetime
) -> int:
    """Forget the organisation's idempotency records created before ``before``."""
    K = t.idempotency
    result = await session.execute(delete(K).where(K.organization_id == org, K.created_at < before))
    return int(getattr(result, "rowcount", 0) or 0)


# -- audit -------------------------------------------------------------------------------------


async def approval_page(
    session: AsyncSession,
    t: InboxTables,
    org: uuid.UUID,
    *,
    user: uuid.UUID | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    offset: int,
) -> tuple[Sequence[Any], int]:
    A = t.approval
    conditions = [A.organization_id == org]
    if user is not None:
        conditions.append(A.user_id == user)
    if since is not None:
        conditions.append(A.acted_at >= since)
    if until is not None:
        conditions.append(A.acted_at <= until)
    total = await session.scalar(select(func.count()).select_from(A).where(*conditions))
    query = (
        select(A).where(*conditions).order_by(A.acted_at.desc(), A.id).limit(limit).offset(offset)
    )
    return (await session.scalars(query)).all(), int(total or 0)


def lease(now: datetime, seconds: float) -> datetime:
    return now + timedelta(seconds=seconds)

"""One inbox over one source: sync, the local read, the live detail, idempotent actions, audit.

Transactions are short and explicit. A sync reads the source with no transaction open, then
applies the diff and publishes what it found in one transaction (the caller's, when a durable
delivery runs it, so the effects commit with the delivery). An action commits a claim on the
task first, so that two concurrent requests never both reach the source; it then calls the
source with no transaction open, and stores the outcome, publishes the audit event and the
task's closing, and stores the idempotent answer in one transaction.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from pydantic import TypeAdapter
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import own_transaction, read_session, reading, session_scope, utcnow
from app.core.errors import AppError
from app.core.inbox import store
from app.core.inbox.errors import (
    ActionNotAllowed,
    ApprovalsForbidden,
    IdempotencyKeyInProgress,
    IdempotencyKeyReused,
    IntegrationNotConfigured,
    InvalidTimeRange,
    TaskActionInProgress,
    TaskAlreadyDecided,
    TaskNotFound,
    UpstreamFailed,
    UpstreamUnavailable,
)
from app.core.inbox.models import PENDING
from app.core.inbox.schemas import (
    ActionOut,
    ApprovalPage,
    ApprovalRead,
    BulkItemIn,
    BulkOut,
    BulkResult,
    RefreshOutcome,
    TaskDetailRead,
    TaskPage,
    TaskRead,
)
from app.core.inbox.settings import InboxSettings, get_inbox_settings
from app.core.inbox.source import (
    InboxUser,
    LiveTask,
    SourceActionRefused,
    SourceError,
    SourceNotConfigured,
    SourceTaskGone,
    SourceUnavailable,
    TaskRef,
    TaskSource,
)
from app.core.inbox.store import InboxTables, ListingChanges
from app.core.security import Principal

logger = logging.getLogger(__name__)

DECIDED = {"APPROVE": "approved", "REJECT": "rejected"}
NO_LONGER_PENDING = "no_longer_pending"
DECIDED_ELSEWHERE = "decided_elsewhere"
TASK_LIST: TypeAdapter[list[TaskRead]] = TypeAdapter(list[TaskRead])
REPLAYABLE_BELOW = 500
"""Answers below this status are final and replayed for a repeated Idempotency-Key; a 5xx
is not (the repeat tries again)."""


@dataclass(frozen=True, slots=True)
class ApprovalRecord:
    """What the audit event carries and the audit listener stores."""

    id: uuid.UUID
    organization_id: uuid.UUID
    user_id: uuid.UUID
    task_id: str
    action: str
    comment: str | None
    outcome: str
    error_code: str | None
    title: str | None
    acted_at: datetime

    @classmethod
    def of(cls, event: Any, *, fallback_id: uuid.UUID) -> ApprovalRecord:
        """The record an ``audit.<m>.approval`` event describes."""
        return cls(
            id=event.approval_id or fallback_id,
            organization_id=event.organization_id,
            user_id=event.user_id,
            task_id=event.task_id,
            action=event.action,
            comment=event.comment,
            outcome=event.outcome,
            error_code=event.error_code,
            title=event.title,
            acted_at=event.acted_at,
        )


class InboxEvents(Protocol):
    """How the module publishes what the inbox did (its typed events)."""

    async def received(self, task: Any, *, sync_id: uuid.UUID | None) -> None: ...

    async def closed(self, task: Any, *, reason: str) -> None: ...

    async def audited(self, record: ApprovalRecord) -> None: ...


@dataclass(frozen=True, slots=True)
class SyncResult:
    received: int = 0
    updated: int = 0
    closed: int = 0
    confirmed: int = 0
    skipped: bool = False


@dataclass(frozen=True, slots=True)
class Answer:
    """An action's answer: the status and JSON body, replayed for a repeated key."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class KeyClaim:
    """A key this request now holds; ``previous`` is a bulk answer it resumes (see ``RETRY``)."""

    id: uuid.UUID
    previous: dict[str, Any] | None = None


RETRY = "__retry__"
"""In a stored bulk answer: the items whose failure was not final (5xx), which a repeat of the
key runs again; the others are replayed."""


@asynccontextmanager
async def writing(*, join: bool = False) -> AsyncIterator[Any]:
    """A short transaction that commits on its own, or with ``join`` the caller's."""
    if join:
        async with session_scope() as session:
            yield session
    else:
        async with own_transaction() as session:
            yield session


class TaskInbox:
    """The inbox of one module over its source."""

    def __init__(
        self,
        *,
        module: str,
        source: TaskSource,
        events: InboxEvents,
        tables: InboxTables,
        settings: InboxSettings | None = None,
    ) -> None:
        self.module = module
        self.source = source
        self.events = events
        self.tables = tables
        self._settings = settings

    @property
    def settings(self) -> InboxSettings:
        return self._settings or get_inbox_settings()

    # -- the user's identity (a read model fed by the user module's events) -------------------

    async def remember_user(self, user: InboxUser) -> None:
        """Store who the user is at the source (joins the caller's transaction)."""
        async with writing(join=True) as session:
            await store.remember_user(session, self.tables, user)

    async def forget_user(self, organization_id: uuid.UUID, user_id: uuid.UUID) -> None:
        """Mark a deleted user inactive: their inbox is no longer synced."""
        async with writing(join=True) as session:
            row = await store.get_user(session, self.tables, organization_id, user_id)
            if row is not None:
                row.is_active = False

    async def _user(self, principal: Principal) -> InboxUser:
        async with read_session() as session:
            row = await store.get_user(
                session, self.tables, principal.organization_id, principal.user_id
            )
        if row is None:
            return InboxUser(principal.organization_id, principal.user_id, user_type=None)
        return store.inbox_user(row)

    # -- sync ------------------------------------------------------------------------------------

    async def sync(
        self,
        user: InboxUser,
        *,
        sync_id: uuid.UUID | None,
        join: bool = True,
        merge_identity: bool = False,
    ) -> SyncResult:
        """List the user's pending tasks at the source and apply the diff to the inbox.

        Args:
            user: whose inbox.
            sync_id: the sync that finds the tasks (the received events carry it).
            join: apply the diff in the caller's transaction (a durable delivery's) or in one
                of its own.
            merge_identity: ``user`` comes from a sync request: keep the type and state the
                read model knows, take the identity from the request.

        Raises:
            SourceError: the source failed; the inbox keeps its last good copy.
        """
        if merge_identity:
            user = await self._merged(user)
        if not self._can_sync(user):
            return SyncResult(skipped=True)
        try:
            listed = await self.source.pending(user)
        except SourceNotConfigured:
            raise
        except SourceError as exc:
            async with writing() as session:
                await store.mark_sync_failed(
                    session, self.tables, user, code=exc.code, now=utcnow()
                )
            raise
        async with writing(join=join) as session:
            changes = await store.apply_listing(
                session, self.tables, user, listed, now=utcnow(), close_reason=NO_LONGER_PENDING
            )
            await self._publish(changes, sync_id=sync_id)
        return SyncResult(
            received=len(changes.received),
            updated=len(changes.updated),
            closed=len(changes.closed),
            confirmed=changes.confirmed,
        )

    def _can_sync(self, user: InboxUser) -> bool:
        if not user.is_active or user.user_type not in (None, "EMPLOYEE"):
            return False
        return self.source.identity(user) is not None

    async def _merged(self, user: InboxUser) -> InboxUser:
        async with read_session() as session:
            row = await store.get_user(session, self.tables, user.organization_id, user.user_id)
            known = store.inbox_user(row) if row is not None else None
        return InboxUser(
            organization_id=user.organization_id,
            user_id=user.user_id,
            email=user.email or (known.email if known else None),
            oracle_username=user.oracle_username or (known.oracle_username if known else None),
            person_number=user.person_number or (known.person_number if known else None),
            user_type=known.user_type if known else user.user_type,
            is_active=known.is_active if known else user.is_active,
        )

    async def _publish(self, changes: ListingChanges, *, sync_id: uuid.UUID | None) -> None:
        for row in changes.received:
            await self.events.received(row, sync_id=sync_id)
        for row in changes.closed:
            await self.events.closed(row, reason=row.close_reason or NO_LONGER_PENDING)

    # -- read ------------------------------------------------------------------------------------

    async def list_tasks(
        self,
        principal: Principal,
        *,
        pending_only: bool,
        limit: int,
        offset: int,
        refresh: bool = False,
    ) -> TaskPage:
        """Return a page of the caller's local inbox, newest first, after a sync if asked."""
        outcome = None
        if refresh:
            outcome = await self._refresh(principal)
        async with reading() as conn:
            found = await store.task_page(
                conn,
                self.tables,
                principal.organization_id,
                principal.user_id,
                source=self.source.name,
                pending_only=pending_only,
                limit=limit,
                offset=offset,
            )
        # The rows are the database's own, typed values: one validation of the whole list by
        # pydantic's core instead of a model built per row in Python.
        return TaskPage.model_construct(
            items=TASK_LIST.validate_python(found.rows),
            total=found.total,
            limit=limit,
            offset=offset,
            synced_at=found.synced_at,
            refresh=outcome,
        )

    async def _refresh(self, principal: Principal) -> RefreshOutcome:
        user = await self._user(principal)
        if not self._can_sync(user) or user.user_type is None:
            return "skipped"
        try:
            async with asyncio.timeout(self.settings.refresh_timeout_seconds):
                await self.sync(user, sync_id=uuid.uuid4(), join=False)
        except TimeoutError:
            logger.warning("%s refresh of %s timed out", self.module, principal.user_id)
            return "timed_out"
        except (SourceError, IntegrityError) as exc:
            logger.warning("%s refresh of %s failed: %s", self.module, principal.user_id, exc)
            return "failed"
        return "synced"

    async def get_task(self, principal: Principal, row_id: uuid.UUID) -> TaskDetailRead:
        """Return the caller's task with the actions and details its source gives now."""
        async with read_session() as session:
            row = await self._own_task(session, principal, row_id)
            ref = TaskRef(row.task_id, row.source_ref)
        user = await self._user(principal)
        if row.status != PENDING:
            return TaskDetailRead(**self._out(row).model_dump(), actions=[], details={})
        try:
            live = await self.source.read(user, ref)
        except SourceTaskGone:
            live = LiveTask(pending=False)
        except SourceError as exc:
            raise _app_error(exc) from exc
        if not live.pending:
            row = await self._close_gone(principal, row_id)
            return TaskDetailRead(**self._out(row).model_dump(), actions=[], details={})
        return TaskDetailRead(
            **self._out(row).model_dump(), actions=list(live.actions), details=dict(live.details)
        )

    async def _own_task(self, session: Any, principal: Principal, row_id: uuid.UUID) -> Any:
        row = await store.get_task(
            session, self.tables, principal.organization_id, principal.user_id, row_id
        )
        if row is None:
            raise TaskNotFound()
        return row

    async def _close_gone(self, principal: Principal, row_id: uuid.UUID) -> Any:
        async with writing() as session:
            row = await self._own_task(session, principal, row_id)
            if row.status == PENDING:
                row.status, row.close_reason, row.closed_at = "closed", NO_LONGER_PENDING, utcnow()
                await session.flush()
                await self.events.closed(row, reason=NO_LONGER_PENDING)
            return row

    def _out(self, row: Any) -> TaskRead:
        return TaskRead(
            id=row.id,
            task_id=row.task_id,
            source=self.source.name,
            title=row.title,
            summary=row.summary,
            status=row.status,
            close_reason=row.close_reason,
            priority=row.priority,
            assigned_at=row.assigned_at,
            due_at=row.due_at,
            synced_at=row.synced_at,
            closed_at=row.closed_at,
        )

    # -- act -------------------------------------------------------------------------------------

    async def act(
        self,
        principal: Principal,
        row_id: uuid.UUID,
        *,
        action: str,
        comment: str | None,
        idempotency_key: str | None = None,
    ) -> Answer:
        """Take an action on the caller's task at its source, at most once per key.

        Returns the answer to send (success or a final refusal); a repeated key gets the
        stored first answer without a call to the source.

        Raises:
            IdempotencyKeyReused: the key came with a different request.
            IdempotencyKeyInProgress: the key's first request is still running.
            AppError: a refusal that is not stored (5xx), or with no key, any refusal.
        """
        request_hash = _hash(row_id, action, comment)
        key_id = None
        if idempotency_key is not None:
            stored = await self._claim_key(principal, idempotency_key, request_hash)
            if isinstance(stored, Answer):
                return stored
            key_id = stored.id
        try:
            return await self._act(principal, row_id, action=action, comment=comment, key_id=key_id)
        except AppError:
            if key_id is not None:
                await self._forget_key(key_id)
            raise
        except BaseException:
            if key_id is not None:
                await asyncio.shield(self._forget_key(key_id))
            raise

    async def _claim_key(
        self, principal: Principal, key: str, request_hash: str
    ) -> Answer | KeyClaim:
        now = utcnow()
        stale = now - timedelta(seconds=self.settings.action_lease_seconds)
        expired = now - timedelta(hours=self.settings.idempotency_ttl_hours)
        for _ in range(3):
            try:
                async with writing() as session:
                    row = await store.get_key(
                        session, self.tables, principal.organization_id, principal.user_id, key
                    )
                    if row is not None and row.created_at < expired:
                        await session.delete(row)
                        await session.flush()
                        row = None
                    if row is None:
                        row = self.tables.idempotency(
                            organization_id=principal.organization_id,
                            user_id=principal.user_id,
                            key=key,
                            request_hash=request_hash,
                            created_at=now,
                        )
                        session.add(row)
                        await session.flush()
                        return KeyClaim(uuid.UUID(str(row.id)))
                    if row.request_hash != request_hash:
                        raise IdempotencyKeyReused()
                    if row.status_code is not None:
                        body = dict(row.response or {})
                        headers = body.pop("__headers__", {})
                        if not body.get(RETRY):
                            body.pop(RETRY, None)
                            return Answer(row.status_code, body, headers)
                        # A bulk answer with items to try again: this request resumes it.
                        row.status_code, row.created_at = None, now
                        await session.flush()
                        return KeyClaim(uuid.UUID(str(row.id)), previous=body)
                    if row.created_at > stale:
                        raise IdempotencyKeyInProgress()
                    row.created_at = now  # the first request died: this one takes over
                    await session.flush()
                    return KeyClaim(uuid.UUID(str(row.id)), previous=row.response)
            except IntegrityError:
                continue  # a concurrent first request inserted the key: read it again
        raise IdempotencyKeyInProgress()

    async def _forget_key(self, key_id: uuid.UUID) -> None:
        """Let the key's next request run: forget it, or restore the bulk answer it resumed."""
        async with writing() as session:
            row = await session.get(self.tables.idempotency, key_id)
            if row is None or row.status_code is not None:
                return
            if row.response:
                row.status_code = 200
            else:
                await session.delete(row)

    async def _store_answer(self, session: AsyncSession, key_id: uuid.UUID, answer: Answer) -> None:
        key = await session.get(self.tables.idempotency, key_id)
        if key is not None:
            key.status_code = answer.status
            key.response = {**answer.body, "__headers__": answer.headers}

    async def _act(
        self,
        principal: Principal,
        row_id: uuid.UUID,
        *,
        action: str,
        comment: str | None,
        key_id: uuid.UUID | None,
    ) -> Answer:
        now = utcnow()
        async with writing() as session:
            row = await self._own_task(session, principal, row_id)
            if row.status != PENDING:
                raise TaskAlreadyDecided()
            until = now + timedelta(seconds=self.settings.action_lease_seconds)
            if not await store.claim_task(session, self.tables, row.id, now=now, until=until):
                await session.refresh(row)
                raise TaskAlreadyDecided() if row.status != PENDING else TaskActionInProgress()
            ref = TaskRef(row.task_id, row.source_ref)
        user = await self._user(principal)
        approval_id = uuid.uuid4()
        try:
            live = await self.source.read(user, ref, details=False)
            if not live.pending:
                raise SourceTaskGone("not pending")
            if action not in live.actions:
                raise SourceActionRefused(f"offers {', '.join(live.actions) or 'nothing'}")
            await self.source.act(user, ref, live, action=action, comment=comment)
        except SourceError as exc:
            return await self._finish(
                principal, row_id, approval_id, action, comment, key_id, failure=exc
            )
        except BaseException:
            await asyncio.shield(self._release(row_id))
            raise
        return await self._finish(principal, row_id, approval_id, action, comment, key_id)

    async def _release(self, row_id: uuid.UUID) -> None:
        async with writing() as session:
            row = await session.get(self.tables.task, row_id)
            if row is not None:
                row.claimed_until = None

    async def _finish(
        self,
        principal: Principal,
        row_id: uuid.UUID,
        approval_id: uuid.UUID,
        action: str,
        comment: str | None,
        key_id: uuid.UUID | None,
        *,
        failure: SourceError | None = None,
    ) -> Answer:
        """Store the outcome, publish the audit (and closing), store the answer: one commit."""
        now = utcnow()
        error = _app_error(failure) if failure is not None else None
        async with writing() as session:
            row = await session.get(self.tables.task, row_id)
            assert row is not None
            row.claimed_until = None
            if failure is None:
                row.status, row.close_reason, row.closed_at = DECIDED[action], DECIDED[action], now
            elif isinstance(failure, SourceTaskGone) and row.status == PENDING:
                row.status, row.close_reason, row.closed_at = "closed", DECIDED_ELSEWHERE, now
            await session.flush()
            await self.events.audited(
                ApprovalRecord(
                    id=approval_id,
                    organization_id=principal.organization_id,
                    user_id=principal.user_id,
                    task_id=row.task_id,
                    action=action,
                    comment=comment,
                    outcome="succeeded" if failure is None else "failed",
                    error_code=None if error is None else error.code,
                    title=row.title,
                    acted_at=now,
                )
            )
            if row.status != PENDING and row.closed_at == now:
                await self.events.closed(row, reason=row.close_reason or DECIDED_ELSEWHERE)
            if error is None:
                out = ActionOut(task=self._out(row), approval_id=approval_id)
                answer = Answer(200, out.model_dump(mode="json"), {})
            else:
                error.extra["approval_id"] = str(approval_id)
                answer = Answer(error.status, _problem_body(error), dict(error.headers))
            if key_id is not None and answer.status < REPLAYABLE_BELOW:
                await self._store_answer(session, key_id, answer)
        if error is not None:
            raise error
        return answer

    # -- bulk ------------------------------------------------------------------------------------

    async def act_many(
        self,
        principal: Principal,
        items: Sequence[BulkItemIn],
        *,
        idempotency_key: str | None = None,
    ) -> BulkOut:
        """Act on up to 50 tasks, a few at once, answering each; stop once the breaker opens.

        With an ``idempotency_key``, the answer is stored: a repeat replays each item's final
        answer and runs again only the items that failed with a 5xx (the rest of the answer
        is replayed as it was); the same key with other items raises
        :class:`IdempotencyKeyReused`.
        """
        if idempotency_key is None:
            results, _ = await self._act_many(principal, items, {})
            return BulkOut(results=results)
        stored = await self._claim_key(principal, idempotency_key, _bulk_hash(items))
        if isinstance(stored, Answer):
            return BulkOut.model_validate(stored.body)
        done: dict[int, BulkResult] = {}
        if stored.previous:
            again = set(stored.previous.get(RETRY) or ())
            for index, result in enumerate(stored.previous.get("results") or ()):
                if index not in again:
                    done[index] = BulkResult.model_validate(result)
        try:
            results, retry = await self._act_many(principal, items, done)
            async with writing() as session:
                body = BulkOut(results=results).model_dump(mode="json")
                await self._store_answer(
                    session, stored.id, Answer(200, {**body, RETRY: retry}, {})
                )
        except BaseException:
            await asyncio.shield(self._forget_key(stored.id))
            raise
        return BulkOut(results=results)

    async def _act_many(
        self, principal: Principal, items: Sequence[BulkItemIn], done: dict[int, BulkResult]
    ) -> tuple[list[BulkResult], list[int]]:
        """Answer each item (those in ``done`` as they are), and which failed with a 5xx."""
        limit = asyncio.Semaphore(self.settings.bulk_concurrency)
        stopped: list[UpstreamUnavailable] = []
        retry: list[int] = []

        async def one(index: int, item: BulkItemIn) -> BulkResult:
            if index in done:
                return done[index]
            async with limit:
                if stopped:
                    retry.append(index)
                    return _failed(item.id, stopped[0])
                try:
                    answer = await self._act(
                        principal,
                        item.id,
                        action=item.action,
                        comment=item.comment,
                        key_id=None,
                    )
                except AppError as exc:
                    if isinstance(exc, UpstreamUnavailable) and exc.extra.get("breaker_open"):
                        stopped.append(exc)
                    if exc.status >= REPLAYABLE_BELOW:
                        retry.append(index)
                    return _failed(item.id, exc)
                return BulkResult(
                    id=item.id,
                    outcome="succeeded",
                    approval_id=answer.body["approval_id"],
                    status=answer.body["task"]["status"],
                )

        results = await asyncio.gather(*(one(i, item) for i, item in enumerate(items)))
        return list(results), sorted(retry)

    # -- audit -----------------------------------------------------------------------------------

    async def record_approval(self, record: ApprovalRecord) -> bool:
        """Write the audit record once (joins the delivery's transaction); False if known."""
        async with writing(join=True) as session:
            if await session.get(self.tables.approval, record.id) is not None:
                return False
            session.add(
                self.tables.approval(
                    id=record.id,
                    organization_id=record.organization_id,
                    user_id=record.user_id,
                    task_id=record.task_id,
                    action=record.action,
                    comment=record.comment,
                    outcome=record.outcome,
                    error_code=record.error_code,
                    title=record.title,
                    acted_at=record.acted_at,
                )
            )
            await session.flush()
            return True

    async def approvals(
        self,
        principal: Principal,
        *,
        user_id: uuid.UUID | None,
        since: datetime | None,
        until: datetime | None,
        limit: int,
        offset: int,
    ) -> ApprovalPage:
        """Return the audit trail: the caller's own, or an admin's organisation's."""
        if since is not None and until is not None and since > until:
            raise InvalidTimeRange()
        if not principal.is_admin:
            if user_id is not None and user_id != principal.user_id:
                raise ApprovalsForbidden()
            user_id = principal.user_id
        async with read_session() as session:
            rows, total = await store.approval_page(
                session,
                self.tables,
                principal.organization_id,
                user=user_id,
                since=since,
                until=until,
                limit=limit,
                offset=offset,
            )
            items = [
                ApprovalRead(
                    id=r.id,
                    user_id=r.user_id,
                    task_id=r.task_id,
                    source=self.source.name,
                    action=r.action,
                    comment=r.comment,
                    outcome=r.outcome,
                    error_code=r.error_code,
                    title=r.title,
                    acted_at=r.acted_at,
                )
                for r in rows
            ]
        return ApprovalPage(items=items, total=total, limit=limit, offset=offset)

    async def prune_idempotency_keys(
        self, session: AsyncSession, *, organization_id: uuid.UUID
    ) -> int:
        """Forget the organisation's idempotency records older than their time to live
        (``INBOX_IDEMPOTENCY_TTL_HOURS``, at least a day), in the caller's transaction."""
        before = utcnow() - timedelta(hours=self.settings.idempotency_ttl_hours)
        return await store.prune_keys(session, self.tables, organization_id, before=before)


def _hash(row_id: uuid.UUID, action: str, comment: str | None) -> str:
    canonical = json.dumps([str(row_id), action, comment], separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _bulk_hash(items: Sequence[BulkItemIn]) -> str:
    canonical = [["bulk"], *([str(i.id), i.action, i.comment] for i in items)]
    return hashlib.sha256(json.dumps(canonical, separators=(",", ":")).encode()).hexdigest()


def _app_error(exc: SourceError) -> AppError:
    """The client's answer for a source failure."""
    if isinstance(exc, SourceTaskGone):
        return TaskAlreadyDecided()
    if isinstance(exc, SourceActionRefused):
        return ActionNotAllowed()
    if isinstance(exc, SourceUnavailable):
        return UpstreamUnavailable(retry_after=exc.retry_after, breaker_open=exc.breaker_open)
    if isinstance(exc, SourceNotConfigured):
        return IntegrationNotConfigured()
    return UpstreamFailed(code=exc.code)


def _problem_body(error: AppError) -> dict[str, Any]:
    return {"status": error.status, "code": error.code, "detail": error.detail, **error.extra}


def _failed(row_id: uuid.UUID, error: AppError) -> BulkResult:
    retry_after = error.extra.get("retry_after")
    return BulkResult(
        id=row_id,
        outcome="failed",
        code=error.code,
        retry_after=int(retry_after) if retry_after is not None else None,
    )

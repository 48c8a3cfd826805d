"""An inbox's actions: at most once per Idempotency-Key, one claim per task, audited once.

An action commits a claim on the task first, so that two concurrent requests never both reach
the source; it then calls the source with no transaction open, and stores the outcome,
publishes the audit event and the task's closing, and stores the idempotent answer in one
transaction. The module's durable listener writes the audit record, once.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import asdict
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import utcnow
from app.core.errors import AppError
from app.core.inbox import store
from app.core.inbox.base import (
    DECIDED,
    DECIDED_ELSEWHERE,
    REPLAYABLE_BELOW,
    RETRY,
    Answer,
    ApprovalRecord,
    KeyClaim,
    _app_error,
    _hash,
    _problem_body,
    writing,
)
from app.core.inbox.errors import (
    IdempotencyKeyInProgress,
    IdempotencyKeyReused,
    TaskActionInProgress,
    TaskAlreadyDecided,
)
from app.core.inbox.models import PENDING
from app.core.inbox.read import ReadingInbox
from app.core.inbox.schemas import ActionOut
from app.core.inbox.source import (
    SourceActionRefused,
    SourceError,
    SourceTaskGone,
    TaskRef,
)
from app.core.security import Principal


class ActingInbox(ReadingInbox):
    """The actions and their audit records."""

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

    async def record_approval(self, event: Any) -> bool:
        """Write the audit record an ``audit.<m>.approval`` event describes, once (joins the
        delivery's transaction); False if it is already written."""
        record = ApprovalRecord.of(event)
        async with writing(join=True) as session:
            if await session.get(self.tables.approval, record.id) is not None:
                return False
            session.add(self.tables.approval(**asdict(record)))
            await session.flush()
            return True

    async def prune_idempotency_keys(
        self, session: AsyncSession, *, organization_id: uuid.UUID
    ) -> int:
        """Forget the organisation's idempotency records older than their time to live
        (``INBOX_IDEMPOTENCY_TTL_HOURS``, at least a day), in the caller's transaction."""
        before = utcnow() - timedelta(hours=self.settings.idempotency_ttl_hours)
        return await store.prune_keys(session, self.tables, organization_id, before=before)

"""An inbox's bulk actions: up to 50 items, a few at once, each answered on its own."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from app.core.errors import AppError
from app.core.inbox.act import ActingInbox
from app.core.inbox.base import (
    REPLAYABLE_BELOW,
    RETRY,
    Answer,
    _bulk_hash,
    _failed,
    writing,
)
from app.core.inbox.errors import UpstreamUnavailable
from app.core.inbox.schemas import (
    BulkItemIn,
    BulkOut,
    BulkResult,
)
from app.core.security import Principal


class BulkInbox(ActingInbox):
    """Bulk actions (each item is a single action without a key)."""

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

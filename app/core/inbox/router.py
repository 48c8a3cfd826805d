"""The routes every inbox module mounts: ``/{m}/tasks``, its actions and ``/{m}/approvals``."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query
from fastapi.responses import JSONResponse, Response

from app.core.db import ReadSession
from app.core.errors import problem
from app.core.inbox.engine import Answer, TaskInbox
from app.core.inbox.schemas import (
    ActionIn,
    ActionOut,
    ApprovalPage,
    BulkIn,
    BulkOut,
    TaskDetailRead,
    TaskPage,
)
from app.core.security import CallerBriefly, CallerReading

MAX_OFFSET = 2**63 - 1
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        pattern=r"^[\x21-\x7e][\x20-\x7e]*$",
        description="Any string up to 200 characters; a repeat returns the first answer.",
    ),
]
Limit = Annotated[int, Query(ge=1, le=200)]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET)]


def inbox_router(inbox: TaskInbox, *, prefix: str, tag: str) -> APIRouter:
    """Return the routes of ``inbox`` under ``prefix`` (``/procurement``...)."""
    router = APIRouter(prefix=prefix, tags=[tag])
    name = inbox.module

    @router.get("/tasks", response_model=TaskPage, summary=f"My {name} inbox")
    async def list_tasks(
        principal: CallerReading,
        session: ReadSession,
        status: Literal["pending", "all"] = "pending",
        refresh: bool = False,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> Response:
        """List my tasks from the local inbox, newest first; ``refresh=true`` syncs first."""
        page = await inbox.list_tasks(
            principal,
            session=session,
            pending_only=status == "pending",
            limit=limit,
            offset=offset,
            refresh=refresh,
        )
        # Serialised once, by pydantic's core: the page is already a TaskPage.
        return Response(page.model_dump_json(), media_type="application/json")

    @router.post("/tasks/actions", response_model=BulkOut, summary=f"Act on many {name} tasks")
    async def act_on_tasks(
        body: BulkIn, principal: CallerBriefly, idempotency_key: IdempotencyKey = None
    ) -> BulkOut:
        """Approve or reject 1 to 50 tasks; each item is answered on its own. A repeated
        Idempotency-Key replays the final answers and tries the 5xx failures again."""
        return await inbox.act_many(principal, body.items, idempotency_key=idempotency_key)

    @router.get("/tasks/{task_id}", response_model=TaskDetailRead, summary=f"One {name} task")
    async def read_task(task_id: uuid.UUID, principal: CallerBriefly) -> TaskDetailRead:
        """Read my task, with the actions and details its source gives now."""
        return await inbox.get_task(principal, task_id)

    @router.post(
        "/tasks/{task_id}/actions", response_model=ActionOut, summary=f"Act on a {name} task"
    )
    async def act_on_task(
        task_id: uuid.UUID,
        body: ActionIn,
        principal: CallerBriefly,
        idempotency_key: IdempotencyKey = None,
    ) -> Any:
        """Approve or reject my task at its source; a repeated Idempotency-Key replays."""
        answer = await inbox.act(
            principal,
            task_id,
            action=body.action,
            comment=body.comment,
            idempotency_key=idempotency_key,
        )
        return _response(answer)

    @router.get("/approvals", response_model=ApprovalPage, summary=f"The {name} audit trail")
    async def list_approvals(
        principal: CallerBriefly,
        user_id: uuid.UUID | None = None,
        since: Annotated[datetime | None, Query(alias="from")] = None,
        until: Annotated[datetime | None, Query(alias="to")] = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> ApprovalPage:
        """List approvals, newest first: mine, or (admins) my organisation's."""
        return await inbox.approvals(
            principal,
            user_id=user_id,
            since=_aware(since),
            until=_aware(until),
            limit=limit,
            offset=offset,
        )

    return router


def _response(answer: Answer) -> JSONResponse:
    if answer.status < 400:
        return JSONResponse(answer.body, status_code=answer.status, headers=answer.headers)
    body = dict(answer.body)
    status = int(body.pop("status", answer.status))
    code = str(body.pop("code", "error"))
    detail = str(body.pop("detail", ""))
    return problem(status, code, detail, headers=answer.headers or None, **body)


def _aware(value: datetime | None) -> datetime | None:
    """A time without a zone is taken as UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)

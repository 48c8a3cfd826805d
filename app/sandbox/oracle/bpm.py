"""Simulated BPM worklist: ``/bpm/api/4.0/tasks``, a task's detail, and acting on it.

A person sees the tasks assigned to them (``MY``, ``MY_AND_GROUP``; the sandbox has no groups);
the integration account, a worklist administrator, sees everyone's with ``ALL`` or ``ADMIN``.
Acting changes the task's state at once: APPROVE or REJECT completes it (and the requisition
behind a Purchasing task follows), a second action answers 409. Every action a client sends is
recorded with its outcome, for ``GET /sandbox/oracle/actions``. A task that appeared after the
start and was left undecided for ``SANDBOX_TASK_LIFETIME_GENERATIONS`` expires: it leaves the
ASSIGNED listings, reads as EXPIRED with no actions (``status=EXPIRED`` lists it), and acting on it
answers 409. The base inbox never expires.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app.sandbox.data import TaskSeed
from app.sandbox.oracle.common import (
    Identity,
    OracleError,
    authenticate,
    base_url,
    int_param,
    state_of,
)
from app.sandbox.oracle.worklist import ASSIGNED, COMPLETED, EXPIRED, Worklist, task_state
from app.sandbox.state import Decision

TASKS = "/bpm/api/4.0/tasks"
MY = {"MY", "MY_AND_GROUP", "MY_AND_GROUP_ALL"}
ADMIN = {"ALL", "ADMIN"}
EMPTY = {"GROUP", "REPORTEES", "OWNER", "REVIEWER", "PREVIOUS"}
DECISIONS = {"APPROVE": "APPROVED", "REJECT": "REJECTED"}


def _bpm_date(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def worklist_of(request: Request) -> Worklist:
    worklist: Worklist = request.app.state.worklist
    return worklist


def task_body(
    request: Request, task: TaskSeed, *, generations: int, detail: bool
) -> dict[str, Any]:
    """A task in the BPM JSON shape (dates as ``YYYY-MM-DD HH:MM:SS``)."""
    state = state_of(request)
    data = state.data
    approver = data.person(task.approver)
    requester = data.person(task.requester)
    decision = state.task_decisions.get(task.number)
    current = task_state(state, task, generations)
    if task.is_purchasing:
        category, definition, context = "Purchasing", "DocumentApproval", "fscm"
        title = f"Approval of Requisition {10_000_000 + task.number} from {requester.display_name}"
        key = str(task.requisition_id)
    else:
        category, definition, template = data.hr_kind(task)
        context = "hcm"
        title = template.format(who=requester.display_name)
        key = str(300100555000000 + task.number)
    if decision is not None:
        updated = datetime.fromtimestamp(decision.at, UTC)
    elif current == EXPIRED:
        updated = datetime.fromtimestamp(state.expired_at(task.generation), UTC)
    else:
        updated = task.created
    body: dict[str, Any] = {
        "number": task.number,
        "taskId": data.task_id(task.number),
        "title": title,
        "state": current,
        "outcome": None if decision is None else decision.outcome,
        "priority": 1 + task.number % 5,
        "assignees": {"items": [{"id": approver.username, "type": "user"}]},
        "createdBy": requester.display_name,
        "createdDate": _bpm_date(task.created),
        "assignedDate": _bpm_date(task.created),
        "updatedDate": _bpm_date(updated),
        "dueDate": _bpm_date(task.due) if task.due else None,
        "fromUserName": requester.username,
        "fromUserDisplayName": requester.display_name,
        "ownerUser": requester.username,
        "identificationKey": key,
        "taskDefinitionName": definition,
        "category": category,
        "applicationContext": context,
        "approvalDuration": 0,
        "href": f"{base_url(request)}{TASKS}/{task.number}",
    }
    if detail:
        body["titlePrefix"] = "Action Required" if current == ASSIGNED else None
        body["actionList"] = (
            []
            if current != ASSIGNED
            else [
                {"actionId": "DELEGATE", "actionType": "System", "title": "DELEGATE", "length": 0},
                {"actionId": "REASSIGN", "actionType": "System", "title": "REASSIGN", "length": 0},
                {"actionId": "APPROVE", "actionType": "Custom", "title": "Approve", "length": 0},
                {"actionId": "REJECT", "actionType": "Custom", "title": "Reject", "length": 0},
            ]
        )
        body["comments"] = (
            {"items": [{"commentStr": decision.comment, "updatedBy": decision.actor}]}
            if decision and decision.comment
            else {"items": []}
        )
    return body


async def list_tasks(request: Request) -> Response:
    """``GET /bpm/api/4.0/tasks``: ``assignment``, ``status``, ``applicationContext``, paging."""
    identity = authenticate(request)
    state = state_of(request)
    params = request.query_params
    assignment = params.get("assignment", "MY_AND_GROUP").upper()
    if assignment not in MY | ADMIN | EMPTY:
        raise OracleError(400, f"Invalid assignment filter {assignment}.")
    status = params.get("status", "ASSIGNED").upper()
    context = params.get("applicationContext")
    limit = int_param(request, "limit", 25, low=-1, high=500)
    offset = int_param(request, "offset", 0, low=0, high=10**9)

    generations = state.generations()
    worklist = worklist_of(request)
    page: list[TaskSeed] = []
    has_more = False
    if assignment in ADMIN:
        if not identity.admin:
            raise OracleError(403, "The user is not a worklist administrator.")
        numbers, has_more = worklist.admin_page(
            generations=generations, status=status, context=context, offset=offset, limit=limit
        )
        page = [t for n in numbers if (t := state.data.task(n, generations)) is not None]
    elif assignment not in EMPTY and identity.person is not None:
        mine = worklist.of_person(
            identity.person, generations=generations, status=status, context=context
        )
        end = None if limit <= 0 else offset + limit
        page, has_more = mine[offset:end], end is not None and len(mine) > end
    return JSONResponse(
        {
            "totalResult": False,
            "count": len(page),
            "hasMore": has_more,
            "limit": limit,
            "offset": offset,
            "items": [task_body(request, t, generations=generations, detail=False) for t in page],
            "links": [{"rel": "self", "href": str(request.url)}],
        }
    )


def _find(request: Request, identity: Identity, generations: int) -> TaskSeed:
    raw = request.path_params["number"]
    if not raw.isdigit():
        raise OracleError(400, "The tasknumber is invalid. No action will be performed.")
    task = state_of(request).data.task(int(raw), generations)
    if task is None or not (identity.admin or identity.person == task.approver):
        raise OracleError(404, "Task not found.")
    return task


async def get_task(request: Request) -> Response:
    """``GET /bpm/api/4.0/tasks/{number}``: the task with its ``actionList``."""
    identity = authenticate(request)
    generations = state_of(request).generations()
    task = _find(request, identity, generations)
    return JSONResponse(task_body(request, task, generations=generations, detail=True))


async def act_on_task(request: Request) -> Response:
    """``PUT /bpm/api/4.0/tasks/{number}`` with ``{"action": {"id": ...}, "comment": {...}}``.

    Every authenticated call is recorded, with its outcome (``GET /sandbox/oracle/actions``).
    """
    identity = authenticate(request)
    state = state_of(request)
    generations = state.generations()
    raw = request.path_params["number"]
    try:
        body = json.loads(await request.body())
    except ValueError:
        body = None
    action = body.get("action") if isinstance(body, dict) else None
    action_id = action.get("id") if isinstance(action, dict) else None
    comment = body.get("comment") if isinstance(body, dict) else None
    text = comment.get("commentStr") if isinstance(comment, dict) else None
    task_id: str | None = None  # known once the task is found

    def refused(status: int, outcome: str, detail: str) -> OracleError:
        state.record_action(
            "oracle",
            task=raw,
            task_id=task_id,
            user=identity.username,
            action=action_id if isinstance(action_id, str) else None,
            comment=text if isinstance(text, str) else None,
            outcome=outcome,
            status=status,
        )
        return OracleError(status, detail)

    try:
        task = _find(request, identity, generations)
    except OracleError as exc:
        outcome = "not_found" if exc.status == 404 else "bad_request"
        raise refused(exc.status, outcome, exc.detail) from None
    task_id = state.data.task_id(task.number)
    if body is None:
        raise refused(400, "bad_request", "The request body is not valid JSON.")
    if not isinstance(action_id, str) or not action_id:
        raise refused(400, "bad_request", "The action is missing. No action will be performed.")
    current = task_state(state, task, generations)
    if current == COMPLETED:
        raise refused(
            409, "already_decided", f"Conflict. Task {task.number} has already been completed."
        )
    if current == EXPIRED:
        raise refused(409, "expired", f"Conflict. Task {task.number} has expired.")
    action_id = action_id.upper()
    if action_id not in DECISIONS:
        raise refused(
            400,
            "action_not_allowed",
            f"The action {action_id} is not valid for task {task.number}.",
        )
    state.task_decisions[task.number] = Decision(
        outcome=action_id,
        comment=text if isinstance(text, str) else None,
        actor=identity.username,
        at=state.clock(),
    )
    state.record_action(
        "oracle",
        task=raw,
        task_id=task_id,
        user=identity.username,
        action=action_id,
        comment=text if isinstance(text, str) else None,
        outcome="succeeded",
    )
    return JSONResponse(task_body(request, task, generations=generations, detail=True))

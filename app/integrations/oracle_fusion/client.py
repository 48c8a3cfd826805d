"""The Oracle Fusion client: HCM workers, the BPM worklist and purchase requisitions.

It wraps an injected ``httpx.AsyncClient`` (the integration's one client, with the resilience
transport) and acts as one identity, given as an ``httpx.Auth``: the integration account (basic)
or an acting user (bearer JWT). Every method returns typed models or raises the typed errors of
:mod:`app.integrations.errors`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx

from app.integrations.errors import (
    ActionNotAllowedError,
    AlreadyDecidedError,
    BadRequestError,
    NotFoundError,
    ProtocolError,
    error_from_transport,
)
from app.integrations.oracle_fusion import parsing
from app.integrations.oracle_fusion.errors import (
    INTEGRATION,
    error_from_response,
)
from app.integrations.oracle_fusion.models import (
    LineManager,
    Requisition,
    TaskDetail,
    TaskSummary,
    Worker,
)
from app.integrations.transport import wire

HCM = "/hcmRestApi/resources/11.13.18.05"
FSCM = "/fscmRestApi/resources/11.13.18.05"
BPM_TASKS = "/bpm/api/4.0/tasks"
ACCEPT = "application/json, application/vnd.oracle.adf.error+json"
WORKER_EXPAND = "names,emails,workRelationships.assignments.managers"


class OracleFusionClient:
    """Typed calls to one Oracle Fusion pod, as one identity, for one organisation."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        auth: httpx.Auth,
        framework_version: int = 4,
        tenant: str | None = None,
        page_size: int = 25,
        max_pages: int = 200,
    ) -> None:
        if not 1 <= framework_version <= 9:
            raise ValueError("REST-Framework-Version is between 1 and 9")
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.auth = auth
        self.framework_version = framework_version
        self.tenant = tenant
        self.page_size = page_size
        self.max_pages = max_pages

    # -- HCM -----------------------------------------------------------------------------------

    async def get_worker(self, *, person_number: str) -> Worker:
        """Return the worker with this person number, with line managers resolved."""
        item = await self._one_worker(self._q(PersonNumber=person_number), WORKER_EXPAND)
        if item is None:
            raise NotFoundError(
                f"no worker with person number {person_number}", integration=INTEGRATION
            )
        return await self._with_line_managers(item)

    async def get_worker_by_username(self, username: str) -> Worker:
        """Return the worker whose user account is ``username`` (through ``publicWorkers``)."""
        data = await self._get(
            "get_public_worker",
            f"{HCM}/publicWorkers",
            {
                "q": self._q(Username=username),
                "fields": "PersonId,PersonNumber,Username",
                "onlyData": "true",
                "limit": "1",
            },
            adf=True,
        )
        items = data.get("items") or []
        number = parsing.text(items[0].get("PersonNumber")) if items else None
        if number is None:
            raise NotFoundError(f"no worker with username {username}", integration=INTEGRATION)
        return await self.get_worker(person_number=number)

    async def _one_worker(self, q: str, expand: str) -> Mapping[str, Any] | None:
        data = await self._get(
            "get_worker", f"{HCM}/workers", {"q": q, "expand": expand, "limit": "1"}, adf=True
        )
        items = data.get("items")
        if not isinstance(items, list):
            raise ProtocolError("workers answer without items", integration=INTEGRATION)
        return items[0] if items and isinstance(items[0], Mapping) else None

    async def _with_line_managers(self, item: Mapping[str, Any]) -> Worker:
        base = parsing.worker(item)
        refs = [
            ref
            for ref in (base.assignment.managers if base.assignment else ())
            if (ref.manager_type or "") == parsing.LINE_MANAGER
        ]

        async def resolve(ref_index: int) -> LineManager:
            ref = refs[ref_index]
            found = None
            if ref.manager_assignment_id is not None:
                q = self._q(
                    **{"workRelationships.assignments.AssignmentId": ref.manager_assignment_id}
                )
                found = await self._one_worker(q, "names,emails")
            return parsing.line_manager(ref, found)

        managers = await asyncio.gather(*(resolve(i) for i in range(len(refs))))
        return parsing.worker(item, tuple(managers))

    # -- BPM worklist ---------------------------------------------------------------------------

    async def iter_tasks(
        self,
        *,
        assignment: str = "MY_AND_GROUP",
        status: str = "ASSIGNED",
        application_context: str | None = None,
        keyword: str | None = None,
    ) -> AsyncIterator[TaskSummary]:
        """Yield the worklist's tasks page by page, following ``hasMore``."""
        offset = 0
        for _ in range(self.max_pages):
            params = {
                "assignment": assignment,
                "status": status,
                "limit": str(self.page_size),
                "offset": str(offset),
            }
            if application_context:
                params["applicationContext"] = application_context
            if keyword:
                params["keyword"] = keyword
            data = await self._get("list_tasks", BPM_TASKS, params)
            items = [i for i in data.get("items") or () if isinstance(i, Mapping)]
            for raw in items:
                if parsing.integer(raw.get("number")) is None:
                    raise ProtocolError("a task without a number", integration=INTEGRATION)
                yield parsing.task_summary(raw)
            if not data.get("hasMore") or not items:
                return
            offset += len(items)
        raise ProtocolError(
            f"the worklist has more than {self.max_pages} pages", integration=INTEGRATION
        )

    async def list_tasks(
        self,
        *,
        assignment: str = "MY_AND_GROUP",
        status: str = "ASSIGNED",
        application_context: str | None = None,
        category: str | None = None,
        assignee: str | None = None,
    ) -> list[TaskSummary]:
        """Return every pending task, optionally of one category or for one assignee.

        ``category`` and ``assignee`` filter on our side: BPM documents neither as a parameter.
        ``assignee`` serves the integration account, which reads every user's tasks with
        ``assignment=ALL`` and keeps one person's. Each call pages through the whole tenant's
        worklist, and a worklist longer than ``max_pages`` pages raises :class:`ProtocolError`,
        so filtering by assignee over ALL is for small tenants and the admin view. A sweep over
        many users should list each user's tasks as that user instead (JWT mode,
        ``assignment=MY_AND_GROUP``): one short listing per user, not the tenant's per user.
        """
        wanted_category = category.casefold() if category else None
        wanted_assignee = assignee.casefold() if assignee else None
        out = []
        async for task in self.iter_tasks(
            assignment=assignment, status=status, application_context=application_context
        ):
            if wanted_category and (task.category or "").casefold() != wanted_category:
                continue
            if wanted_assignee and wanted_assignee not in {a.casefold() for a in task.assignees}:
                continue
            out.append(task)
        return out

    async def get_task(self, number: int) -> TaskDetail:
        """Return a task with its ``actionList``."""
        data = await self._get("get_task", f"{BPM_TASKS}/{int(number)}", {})
        if parsing.integer(data.get("number")) is None:
            raise ProtocolError("a task without a number", integration=INTEGRATION)
        return parsing.task_detail(data)

    async def act_on_task(
        self,
        number: int,
        *,
        action: str,
        comment: str | None = None,
        task: TaskDetail | None = None,
    ) -> TaskDetail:
        """Take ``action`` (APPROVE, REJECT...) on a task, refusing one it doesn't offer.

        The action is sent once: BPM has no idempotency key, and acting twice is worse than
        reporting a failure. A decided task raises :class:`AlreadyDecidedError`.
        """
        action = action.strip().upper()
        if not action:
            raise BadRequestError("an action is required", integration=INTEGRATION)
        task = task or await self.get_task(number)
        if task.is_decided:
            raise AlreadyDecidedError(
                f"task {number} is already {task.outcome or task.state}",
                integration=INTEGRATION,
                status=409,
            )
        if not task.offers(action):
            offered = ", ".join(a.id for a in task.actions) or "none"
            raise ActionNotAllowedError(
                f"task {number} does not offer {action} (offers {offered})", integration=INTEGRATION
            )
        body: dict[str, Any] = {"action": {"id": action}}
        if comment:
            body["comment"] = {"commentStr": comment, "commentScope": "TASK"}
        response = await self._send("act_on_task", "PUT", f"{BPM_TASKS}/{int(number)}", json=body)
        if response.status_code >= 400:
            raise error_from_response(response, conflict=AlreadyDecidedError)
        data = self._json(response)
        return (
            parsing.task_detail(data) if parsing.integer(data.get("number")) is not None else task
        )

    # -- Procurement ----------------------------------------------------------------------------

    async def get_requisition(self, header_id: int) -> Requisition:
        """Return a purchase requisition (the ``identificationKey`` of a Purchasing task)."""
        return await self._requisition(self._q(RequisitionHeaderId=int(header_id)), str(header_id))

    async def get_requisition_by_number(self, number: str) -> Requisition:
        """Return a purchase requisition by its document number."""
        return await self._requisition(self._q(Requisition=number), number)

    async def _requisition(self, q: str, label: str) -> Requisition:
        data = await self._get(
            "get_requisition",
            f"{FSCM}/purchaseRequisitions",
            {"q": q, "expand": "lines", "limit": "1"},
            adf=True,
        )
        items = [i for i in data.get("items") or () if isinstance(i, Mapping)]
        if not items:
            raise NotFoundError(f"no requisition {label}", integration=INTEGRATION)
        return parsing.requisition(items[0])

    # -- plumbing -------------------------------------------------------------------------------

    def _q(self, **conditions: str | int) -> str:
        """Build ``q``: query-by-example for version 1, the expression syntax from 2 on."""
        parts = []
        for name, value in conditions.items():
            if isinstance(value, str) and (not value or any(c in value for c in ";\n\r")):
                raise BadRequestError(f"invalid value for {name}", integration=INTEGRATION)
            if self.framework_version < 2 or isinstance(value, int):
                parts.append(f"{name}={value}")
            else:
                escaped = value.replace("'", "''")
                parts.append(f"{name}='{escaped}'")
        return (";" if self.framework_version < 2 else " and ").join(parts)

    async def _get(
        self, operation: str, path: str, params: Mapping[str, str], *, adf: bool = False
    ) -> Mapping[str, Any]:
        response = await self._send(operation, "GET", path, params=params, adf=adf)
        if response.status_code >= 400:
            raise error_from_response(response)
        return self._json(response)

    async def _send(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        adf: bool = False,
    ) -> httpx.Response:
        headers = {"Accept": ACCEPT}
        if adf:
            headers["REST-Framework-Version"] = str(self.framework_version)
        try:
            return await self.http.request(
                method,
                self.base_url + path,
                params=params,
                json=json,
                headers=headers,
                auth=self.auth,
                extensions=wire.extensions(tenant=self.tenant, operation=operation),
            )
        except httpx.TransportError as exc:
            raise error_from_transport(exc, integration=INTEGRATION) from exc

    @staticmethod
    def _json(response: httpx.Response) -> Mapping[str, Any]:
        try:
            data = response.json()
        except ValueError as exc:
            raise ProtocolError(
                "the answer is not JSON", integration=INTEGRATION, status=response.status_code
            ) from exc
        if not isinstance(data, Mapping):
            raise ProtocolError(
                "the answer is not a JSON object",
                integration=INTEGRATION,
                status=response.status_code,
            )
        return data

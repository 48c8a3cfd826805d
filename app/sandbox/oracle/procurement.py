"""Simulated procurement: ``purchaseRequisitions`` behind the Purchasing approval tasks."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app.sandbox.data import REQUISITION_ID_BASE, TaskSeed
from app.sandbox.oracle.bpm import DECISIONS
from app.sandbox.oracle.common import (
    ADF_COLLECTION,
    authenticate,
    base_url,
    child_value,
    collection,
    expansions,
    framework_version,
    item_links,
    only_data,
    paged,
    parse_q,
    state_of,
)

FSCM = "/fscmRestApi/resources/11.13.18.05"
EXPIRED_STATUS = "RETURNED"
"""An expired approval hands the requisition back to its preparer: it is no longer pending."""


def _requisition(
    request: Request, task: TaskSeed, version: int, expand: set[str]
) -> dict[str, Any]:
    state = state_of(request)
    data = state.data
    preparer = data.person(task.requester)
    href = f"{base_url(request)}{FSCM}/purchaseRequisitions/{task.requisition_id}"
    currency = "EUR" if task.approver % 4 == 3 else "USD"
    item: dict[str, Any] = {
        "RequisitionHeaderId": task.requisition_id,
        "Requisition": str(10_000_000 + task.number),
        "RequisitioningBUId": 300100037681347,
        "RequisitioningBU": "Vision Operations",
        "PreparerId": preparer.person_id,
        "Preparer": preparer.display_name,
        "PreparerEmail": preparer.email,
        "Description": f"Purchase request from {preparer.display_name}",
        "Justification": None,
        "DocumentStatus": _status(request, task),
        "ExternallyManagedFlag": False,
        "CreationDate": task.created.isoformat(),
    }
    if not only_data(request):
        item["links"] = item_links(href, "purchaseRequisitions", ("lines",))
    if "lines" in expand:
        lines = []
        for n, (description, category, price, quantity) in enumerate(
            data.requisition_lines(task), 1
        ):
            line: dict[str, Any] = {
                "RequisitionLineId": task.requisition_id * 10 + n,
                "LineNumber": n,
                "LineTypeCode": "Goods",
                "CategoryName": category,
                "ItemDescription": description,
                "UOM": "Each",
                "Quantity": quantity,
                "Price": float(price),
                "CurrencyCode": currency,
                "RequesterId": preparer.person_id,
                "RequestedDeliveryDate": "2026-12-15",
            }
            if not only_data(request):
                line["links"] = item_links(
                    f"{href}/child/lines/{line['RequisitionLineId']}", "lines"
                )
            lines.append(line)
        item["lines"] = child_value(lines, version, f"{href}/child/lines")
    return item


def _status(request: Request, task: TaskSeed) -> str:
    """The requisition follows its approval task: decided, expired, or pending."""
    state = state_of(request)
    decision = state.task_decisions.get(task.number)
    if decision is not None:
        return DECISIONS[decision.outcome]
    if state.is_expired(task.generation, state.generations()):
        return EXPIRED_STATUS
    return "PENDING APPROVAL"


async def purchase_requisitions(request: Request) -> Response:
    """``GET /purchaseRequisitions``: by ``RequisitionHeaderId`` or ``Requisition`` number."""
    authenticate(request)
    version = framework_version(request)
    state = state_of(request)
    conditions = parse_q(request, version, {"RequisitionHeaderId", "Requisition"})
    expand = expansions(request, {"lines": ()})
    numbers: set[int] | None = None
    for name, value in conditions.items():
        if not value.isdigit():
            here: set[int] = set()
        elif name == "RequisitionHeaderId":
            here = {int(value) - REQUISITION_ID_BASE}
        else:
            here = {int(value) - 10_000_000}
        numbers = here if numbers is None else numbers & here
    tasks = []
    for number in sorted(numbers or ()):
        task = state.data.task(number, state.generations())
        if task is not None and task.is_purchasing:
            tasks.append(task)
    page, has_more, limit, offset = paged(tasks, request)
    items = [_requisition(request, t, version, expand) for t in page]
    return JSONResponse(
        collection(request, items, has_more=has_more, limit=limit, offset=offset, total=len(tasks)),
        media_type=ADF_COLLECTION,
    )

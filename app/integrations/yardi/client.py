"""The Yardi client: leasing approvals over SOAP, with the credentials in every body.

Yardi publishes no leasing-approval API, so the contract is ours, in Yardi's style, and lives
only here (:data:`INTERFACE` and the three ``*_Login`` methods): when a customer's WSDL arrives,
this file is what changes.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import TypeVar
from xml.etree.ElementTree import Element

import httpx

from app.integrations.errors import (
    ActionNotAllowedError,
    AlreadyDecidedError,
    BadRequestError,
    ProtocolError,
    error_from_response,
    error_from_transport,
    for_status,
)
from app.integrations.transport import wire
from app.integrations.yardi import soap
from app.integrations.yardi.errors import INTEGRATION
from app.integrations.yardi.models import (
    ApprovalActionResult,
    Attachment,
    LeasingApproval,
    LeasingApprovalDetail,
    YardiCredentials,
)

INTERFACE = "ItfLeasingApprovals"
"""Our leasing-approval interface, served at ``<base>/webservices/itfleasingapprovals.asmx``."""
_A = TypeVar("_A", bound=LeasingApproval)

GET_PENDING = "GetPendingApprovals_Login"
GET_DETAIL = "GetApprovalDetail_Login"
TAKE_ACTION = "TakeApprovalAction_Login"


class YardiClient:
    """Typed SOAP calls to one Yardi database, for one organisation."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        credentials: YardiCredentials,
        tenant: str | None = None,
        max_response_bytes: int = 5_000_000,
    ) -> None:
        self.http = http
        self.url = f"{base_url.rstrip('/')}/webservices/{INTERFACE.lower()}.asmx"
        self.namespace = soap.namespace(INTERFACE)
        self.credentials = credentials
        self.tenant = tenant
        self.max_response_bytes = max_response_bytes

    async def pending_approvals(self, *, approver: str) -> list[LeasingApproval]:
        """Return the leasing approvals waiting for ``approver`` (a Yardi user name)."""
        result = await self._call(GET_PENDING, [("ApproverUserName", approver)], idempotent=True)
        container = soap.descendant(result, "PendingApprovals")
        if container is None:
            return []
        return [_approval(item, LeasingApproval) for item in soap.children(container, "Approval")]

    async def approval_detail(
        self, *, approver: str, workflow_name: str, record_id: str
    ) -> LeasingApprovalDetail:
        """Return one approval with the actions it offers and its attachments."""
        result = await self._call(
            GET_DETAIL,
            [
                ("ApproverUserName", approver),
                ("WorkflowName", workflow_name),
                ("RecordId", record_id),
            ],
            idempotent=True,
        )
        detail = soap.descendant(result, "ApprovalDetail")
        if detail is None:
            raise ProtocolError("no ApprovalDetail in the answer", integration=INTEGRATION)
        return _approval(detail, LeasingApprovalDetail)

    async def take_action(
        self,
        *,
        approver: str,
        workflow_name: str,
        record_id: str,
        action: str,
        comment: str | None = None,
        detail: LeasingApprovalDetail | None = None,
    ) -> ApprovalActionResult:
        """Approve or reject an approval as ``approver``, refusing an action it doesn't offer.

        Sent once: the contract has no idempotency key.
        """
        action = action.strip().capitalize()
        if not action:
            raise BadRequestError("an action is required", integration=INTEGRATION)
        detail = detail or await self.approval_detail(
            approver=approver, workflow_name=workflow_name, record_id=record_id
        )
        if (detail.status or "Pending").casefold() != "pending":
            raise AlreadyDecidedError(
                f"record {record_id} is already {detail.status}", integration=INTEGRATION
            )
        if not detail.offers(action):
            offered = ", ".join(detail.actions) or "none"
            raise ActionNotAllowedError(
                f"record {record_id} does not offer {action} (offers {offered})",
                integration=INTEGRATION,
            )
        result = await self._call(
            TAKE_ACTION,
            [
                ("ApproverUserName", approver),
                ("WorkflowName", workflow_name),
                ("RecordId", record_id),
                ("Action", action),
                ("Comment", comment or ""),
            ],
            idempotent=False,
        )
        outcome = soap.descendant(result, "ApprovalActionResult")
        return ApprovalActionResult(
            record_id=soap.text_of(outcome, "RecordId") or record_id,
            status=soap.text_of(outcome, "Status"),
            message=soap.text_of(outcome, "Message"),
        )

    async def _call(
        self, method: str, fields: Iterable[tuple[str, str]], *, idempotent: bool
    ) -> Element:
        body = soap.envelope(
            method, self.namespace, [*soap.credential_fields(self.credentials), *fields]
        )
        request = self.http.build_request(
            "POST",
            self.url,
            content=body,
            headers={
                "Content-Type": "text/xml; charset=utf-8",
                "SOAPAction": f'"{self.namespace}/{method}"',
            },
            extensions=wire.extensions(tenant=self.tenant, idempotent=idempotent, operation=method),
        )
        try:
            response = await self.http.send(request, stream=True)
            try:
                content = await self._read_capped(response)
            finally:
                await response.aclose()
        except httpx.TransportError as exc:
            raise error_from_transport(exc, integration=INTEGRATION) from exc
        if response.status_code != 200 and not _looks_like_xml(response, content):
            raise error_from_response(
                response,
                content[:500].decode("utf-8", "replace").strip() or response.reason_phrase,
                integration=INTEGRATION,
            )
        root = soap.parse(content)
        failure = soap.fault_of(root, response.status_code)
        if failure is not None:
            raise failure
        if response.status_code != 200:
            raise for_status(response.status_code, "SOAP answer", integration=INTEGRATION)
        return soap.result_of(root, method)

    async def _read_capped(self, response: httpx.Response) -> bytes:
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > self.max_response_bytes:
                raise ProtocolError(
                    f"answer larger than {self.max_response_bytes} bytes", integration=INTEGRATION
                )
            chunks.append(chunk)
        return b"".join(chunks)


def _looks_like_xml(response: httpx.Response, content: bytes) -> bool:
    return "xml" in response.headers.get("Content-Type", "") and content.lstrip().startswith(b"<")


def _date(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def _decimal(value: str | None) -> Decimal | None:
    if not value:
        return None
    try:
        return Decimal(value)
    except InvalidOperation:
        return None


def _approval(element: Element, cls: type[_A]) -> _A:
    record_id = soap.text_of(element, "RecordId")
    workflow = soap.text_of(element, "WorkflowName")
    if not record_id or not workflow:
        raise ProtocolError("an approval without RecordId or WorkflowName", integration=INTEGRATION)
    values: dict[str, object] = {
        "type": soap.text_of(element, "Type"),
        "workflow_name": workflow,
        "record_id": record_id,
        "record_code": soap.text_of(element, "RecordCode"),
        "property_code": soap.text_of(element, "PropertyCode"),
        "property_name": soap.text_of(element, "PropertyName"),
        "unit": soap.text_of(element, "Unit"),
        "tenant": soap.text_of(element, "Tenant"),
        "description": soap.text_of(element, "Description"),
        "requested_by": soap.text_of(element, "RequestedBy"),
        "requested_on": _date(soap.text_of(element, "RequestedDate")),
        "due_on": _date(soap.text_of(element, "DueDate")),
        "amount": _decimal(soap.text_of(element, "Amount")),
        "currency": soap.text_of(element, "Currency"),
        "status": soap.text_of(element, "Status"),
    }
    if cls is LeasingApprovalDetail:
        actions = soap.child(element, "Actions")
        attachments = soap.child(element, "Attachments")
        values["actions"] = tuple(
            a.text.strip()
            for a in (soap.children(actions, "Action") if actions is not None else ())
            if a.text and a.text.strip()
        )
        values["attachments"] = tuple(
            Attachment(id=a.get("AttachmentID", ""), name=a.get("AttachmentName"))
            for a in (soap.children(attachments, "Attachment") if attachments is not None else ())
            if a.get("AttachmentID")
        )
        values["lease_start"] = _date(soap.text_of(element, "LeaseStartDate"))
        values["lease_end"] = _date(soap.text_of(element, "LeaseEndDate"))
    return cls.model_validate(values)

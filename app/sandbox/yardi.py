"""The Yardi sandbox: our leasing-approval SOAP contract, answered the way Yardi answers.

Credentials go in every body (``integration`` and the sandbox password); wrong ones get HTTP 200
with a login-failed ``<Messages>``, as Yardi does. Malformed or unsafe XML (a DTD, entities) and
an unknown method or ``SOAPAction`` get a SOAP fault, parsed with defusedxml. Approvals that
appeared after the start expire like BPM tasks (status ``Expired``, no actions) once undecided
for ``SANDBOX_TASK_LIFETIME_GENERATIONS``; the base inbox never does.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from http import HTTPStatus

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from app.integrations.yardi.client import GET_DETAIL, GET_PENDING, INTERFACE, TAKE_ACTION
from app.integrations.yardi.soap import SOAP_NS, child, local, namespace, text_of
from app.sandbox.data import LEASES, PROPERTIES, TENANTS, LeaseSeed
from app.sandbox.faults import FaultInjection
from app.sandbox.state import Decision, Fault, SandboxState

NS = namespace(INTERFACE)
METHODS = (GET_PENDING, GET_DETAIL, TAKE_ACTION)
LOGIN_FAILED = "Login failed. Please check login credentials and try again."
XML = "text/xml; charset=utf-8"
OUTCOMES = {"approve": "Approved", "reject": "Rejected"}


class SoapFault(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _envelope(body: ET.Element) -> Response:
    envelope = ET.Element(f"{{{SOAP_NS}}}Envelope")
    ET.SubElement(envelope, f"{{{SOAP_NS}}}Body").append(body)
    ET.register_namespace("soap", SOAP_NS)
    content = ET.tostring(envelope, encoding="utf-8", xml_declaration=True)
    return Response(content, status_code=200, media_type=XML)


def fault_body(code: str, message: str, status: int = 500) -> Response:
    fault = ET.Element(f"{{{SOAP_NS}}}Fault")
    ET.SubElement(fault, "faultcode").text = f"soap:{code}"
    ET.SubElement(fault, "faultstring").text = message
    ET.SubElement(fault, "detail")
    response = _envelope(fault)
    response.status_code = status
    return response


def _result(method: str, content: ET.Element) -> Response:
    response = ET.Element(f"{{{NS}}}{method}Response")
    result = ET.SubElement(response, f"{{{NS}}}{method}Result")
    result.append(content)
    return _envelope(response)


def _messages(method: str, text: str, kind: str = "Error") -> Response:
    messages = ET.Element("Messages")
    ET.SubElement(messages, "Message", messageType=kind).text = text
    return _result(method, messages)


def _status(state: SandboxState, lease: LeaseSeed, generations: int) -> str:
    decision = state.lease_decisions.get(lease.record_id)
    if decision is not None:
        return OUTCOMES[decision.outcome.casefold()]
    return "Expired" if state.is_expired(lease.generation, generations) else "Pending"


def _approval(state: SandboxState, lease: LeaseSeed, tag: str, generations: int) -> ET.Element:
    data = state.data
    requester = data.person(lease.requester)
    kind, workflow = LEASES[lease.slot]
    element = ET.Element(tag)
    values = {
        "Type": kind,
        "WorkflowName": workflow,
        "RecordId": str(lease.record_id),
        "RecordCode": f"L{lease.record_id}",
        "PropertyCode": f"prop{lease.property_index + 1:02d}",
        "PropertyName": PROPERTIES[lease.property_index],
        "Unit": str(100 + lease.record_id % 50),
        "Tenant": TENANTS[lease.record_id % len(TENANTS)],
        "Description": f"{workflow} for unit {100 + lease.record_id % 50}",
        "RequestedBy": requester.display_name,
        "RequestedDate": lease.requested_on.isoformat(),
        "DueDate": lease.due_on.isoformat() if lease.due_on else None,
        "Amount": f"{1500 + (lease.record_id % 40) * 125}.00",
        "Currency": "USD",
        "Status": _status(state, lease, generations),
    }
    for name, value in values.items():
        if value is not None:
            ET.SubElement(element, name).text = value
    return element


def _lease(
    state: SandboxState, approver: int, workflow: str | None, record: str | None, generations: int
) -> LeaseSeed:
    lease = state.data.lease(int(record), generations) if record and record.isdigit() else None
    if lease is None or lease.approver != approver or LEASES[lease.slot][1] != workflow:
        raise LookupError(f"Record {record} was not found for this approver")
    return lease


def _call(state: SandboxState, method: str, call: ET.Element) -> Response:
    user, password = text_of(call, "UserName"), text_of(call, "Password")
    required = ("ServerName", "Database", "InterfaceEntity")
    if (user or "").casefold() != "integration" or password != state.password:
        return _messages(method, LOGIN_FAILED)
    if any(not text_of(call, name) for name in required):
        return _messages(method, LOGIN_FAILED)
    if not text_of(call, "InterfaceLicense"):
        return _messages(method, "Interface License is invalid or expired")
    login = text_of(call, "ApproverUserName") or ""
    approver = state.data.index_of_login(login)
    if approver is None:
        if method == TAKE_ACTION:
            state.record_action(
                "yardi",
                task=text_of(call, "RecordId") or "",
                workflow_name=text_of(call, "WorkflowName"),
                user=login,
                action=text_of(call, "Action"),
                comment=text_of(call, "Comment"),
                outcome="not_found",
            )
        return _messages(method, f"Approver {login} was not found")
    generations = state.generations()
    if method == GET_PENDING:
        container = ET.Element("PendingApprovals")
        for lease in state.data.leases_of(approver, state.pending_generations(generations)):
            if lease.record_id not in state.lease_decisions:
                container.append(_approval(state, lease, "Approval", generations))
        return _result(method, container)
    try:
        lease = _lease(
            state,
            approver,
            text_of(call, "WorkflowName"),
            text_of(call, "RecordId"),
            generations,
        )
    except LookupError as exc:
        if method == TAKE_ACTION:
            state.record_action(
                "yardi",
                task=text_of(call, "RecordId") or "",
                workflow_name=text_of(call, "WorkflowName"),
                user=login,
                action=text_of(call, "Action"),
                comment=text_of(call, "Comment"),
                outcome="not_found",
            )
        return _messages(method, str(exc))
    status = _status(state, lease, generations)
    if method == GET_DETAIL:
        detail = _approval(state, lease, "ApprovalDetail", generations)
        ET.SubElement(detail, "LeaseStartDate").text = lease.lease_start.isoformat()
        ET.SubElement(detail, "LeaseEndDate").text = lease.lease_end.isoformat()
        actions = ET.SubElement(detail, "Actions")
        if status == "Pending":
            for name in ("Approve", "Reject"):
                ET.SubElement(actions, "Action").text = name
        attachments = ET.SubElement(detail, "Attachments")
        ET.SubElement(
            attachments,
            "Attachment",
            AttachmentID=f"A{lease.record_id}",
            AttachmentName=f"lease-L{lease.record_id}.pdf",
        )
        return _result(method, detail)
    return _take_action(state, call, login, lease, status, method)


def _take_action(
    state: SandboxState, call: ET.Element, login: str, lease: LeaseSeed, status: str, method: str
) -> Response:
    sent = text_of(call, "Action")
    action = (sent or "").casefold()
    comment = text_of(call, "Comment")

    def record(outcome: str) -> None:
        state.record_action(
            "yardi",
            task=str(lease.record_id),
            workflow_name=LEASES[lease.slot][1],
            user=login,
            action=sent,
            comment=comment,
            outcome=outcome,
        )

    if status == "Expired":
        record("expired")
        return _messages(method, f"Record {lease.record_id} has already expired")
    if status != "Pending":
        record("already_decided")
        return _messages(method, f"Record {lease.record_id} has already been {status.lower()}")
    if action not in OUTCOMES:
        record("action_not_allowed")
        return _messages(method, f"Action {sent} is not allowed for record {lease.record_id}")
    state.lease_decisions[lease.record_id] = Decision(
        outcome=action.capitalize(), comment=comment, actor=login, at=state.clock()
    )
    record("succeeded")
    result = ET.Element("ApprovalActionResult")
    ET.SubElement(result, "RecordId").text = str(lease.record_id)
    ET.SubElement(result, "Status").text = OUTCOMES[action]
    ET.SubElement(result, "Message").text = "Workflow step completed"
    return _result(method, result)


async def soap_endpoint(request: Request) -> Response:
    """``POST /webservices/itfleasingapprovals.asmx``: one SOAP 1.1 call."""
    if request.path_params["name"].casefold() != f"{INTERFACE.casefold()}.asmx":
        return PlainTextResponse("The resource cannot be found.", status_code=404)
    state: SandboxState = request.app.state.sandbox
    try:
        root = fromstring(
            await request.body(), forbid_dtd=True, forbid_entities=True, forbid_external=True
        )
    except (DefusedXmlException, ET.ParseError):
        return fault_body(
            "Client", "Server was unable to read request. ---> There is an error in XML document."
        )
    body = child(root, "Body") if local(root.tag) == "Envelope" else None
    call = next(iter(body), None) if body is not None else None
    if call is None or local(call.tag) not in METHODS or not call.tag.startswith(f"{{{NS}}}"):
        name = local(call.tag) if call is not None else "?"
        return fault_body("Client", f"Server did not recognize the method {name}.")
    method = local(call.tag)
    action = request.headers.get("SOAPAction", "").strip('"')
    if action != f"{NS}/{method}":
        return fault_body(
            "Client", f"Server did not recognize the value of HTTP Header SOAPAction: {action}."
        )
    return _call(state, method, call)


def _fault(_request: Request, fault: Fault) -> Response:
    if fault.status == 503:
        return fault_body("Server", "Server was unable to process request. ---> Timeout expired.")
    return PlainTextResponse(HTTPStatus(fault.status).phrase, status_code=fault.status)


def build_yardi(state: SandboxState) -> ASGIApp:
    """Return the ASGI app serving the Yardi SOAP endpoint (mount it under ``/yardi``)."""
    app = Starlette(routes=[Route("/webservices/{name}", soap_endpoint, methods=["POST"])])
    app.state.sandbox = state
    return FaultInjection(app, system="yardi", state=state, render=_fault)

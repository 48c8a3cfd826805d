"""The Yardi client against the sandbox over real HTTP, and against hostile answers."""

from __future__ import annotations

import gzip
import time
from collections.abc import Callable
from typing import TypedDict

import httpx
import pytest

from app.integrations.errors import (
    ActionNotAllowedError,
    AlreadyDecidedError,
    AuthError,
    BadRequestError,
    NotFoundError,
    ProtocolError,
    RateLimitedError,
    UnavailableError,
)
from app.integrations.transport import BreakerRegistry, BreakerState, ResiliencePolicy, build_client
from app.integrations.yardi import SoapFaultError, SoapServerFaultError, YardiClient
from app.integrations.yardi.client import GET_PENDING, INTERFACE
from app.integrations.yardi.soap import (
    credential_fields,
    envelope,
    is_server_failure,
    namespace,
)
from app.sandbox import Fault
from tests.integrations.conftest import RunningSandbox, SleepRecorder, yardi_credentials

Yardi = Callable[..., YardiClient]
EMMA = "EMMA.EMPLOYEE"


class ApprovalIds(TypedDict):
    """The keyword arguments that name one approval to the client."""

    approver: str
    workflow_name: str
    record_id: str


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>&lol9;</soap:Body></soap:Envelope>"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>&x;</soap:Body></soap:Envelope>"""


async def test_pending_detail_and_approve(yardi: Yardi) -> None:
    client = yardi()
    pending = await client.pending_approvals(approver=EMMA)
    assert len(pending) == 2
    first = pending[0]
    assert first.status == "Pending"
    assert first.amount is not None
    assert first.requested_on
    for approval in pending:  # DueDate, where there is one, is after RequestedDate
        assert approval.requested_on is not None
        assert approval.due_on is None or approval.due_on > approval.requested_on
    detail = await client.approval_detail(
        approver=EMMA, workflow_name=first.workflow_name, record_id=first.record_id
    )
    assert detail.actions == ("Approve", "Reject")
    assert detail.attachments[0].name == f"lease-L{first.record_id}.pdf"
    assert detail.lease_start
    assert detail.lease_end
    assert detail.lease_start < detail.lease_end
    result = await client.take_action(
        approver=EMMA,
        workflow_name=first.workflow_name,
        record_id=first.record_id,
        action="approve",
        comment="Rent & terms <ok>",
        detail=detail,
    )
    assert (result.record_id, result.status) == (first.record_id, "Approved")
    remaining = await client.pending_approvals(approver="emma.employee@example.com")
    assert [a.record_id for a in remaining] == [pending[1].record_id]


async def test_a_decided_approval_is_refused_before_and_inside_an_http_200(
    yardi: Yardi, sandbox: RunningSandbox
) -> None:
    client = yardi()
    first = (await client.pending_approvals(approver=EMMA))[0]
    ids = ApprovalIds(approver=EMMA, workflow_name=first.workflow_name, record_id=first.record_id)
    stale = await client.approval_detail(**ids)
    await client.take_action(**ids, action="Reject", detail=stale)
    with pytest.raises(AlreadyDecidedError):
        await client.take_action(**ids, action="Approve")  # the fresh detail says Rejected
    with pytest.raises(AlreadyDecidedError) as caught:
        await client.take_action(**ids, action="Approve", detail=stale)
    assert caught.value.status == 200  # Yardi reports it in <Messages>
    assert "already been rejected" in caught.value.detail


async def test_an_action_not_offered_is_refused_before_calling(
    yardi: Yardi, sandbox: RunningSandbox
) -> None:
    client = yardi()
    first = (await client.pending_approvals(approver=EMMA))[0]
    ids = ApprovalIds(approver=EMMA, workflow_name=first.workflow_name, record_id=first.record_id)
    detail = await client.approval_detail(**ids)
    before = sandbox.state.traffic["yardi"].requests
    with pytest.raises(ActionNotAllowedError):
        await client.take_action(**ids, action="Escalate", detail=detail)
    with pytest.raises(BadRequestError):
        await client.take_action(**ids, action=" ", detail=detail)
    assert sandbox.state.traffic["yardi"].requests == before


async def test_login_failed_inside_an_http_200_is_an_auth_error(yardi: Yardi) -> None:
    with pytest.raises(AuthError) as caught:
        await yardi(password="wrong").pending_approvals(approver=EMMA)
    assert caught.value.status == 200
    assert caught.value.detail.startswith("Login failed")
    with pytest.raises(BadRequestError, match="License"):
        await yardi(interface_license="").pending_approvals(approver=EMMA)


async def test_unknown_approvers_and_records_are_not_found(yardi: Yardi) -> None:
    with pytest.raises(NotFoundError, match="NOBODY"):
        await yardi().pending_approvals(approver="NOBODY")
    with pytest.raises(NotFoundError):
        await yardi().approval_detail(
            approver=EMMA, workflow_name="New Lease Approval", record_id="42"
        )


async def test_reads_are_retried_and_a_server_fault_is_typed(
    yardi: Yardi, sandbox: RunningSandbox, sleeps: SleepRecorder
) -> None:
    sandbox.state.inject("yardi", Fault(504))  # a gateway timeout: retried
    assert len(await yardi().pending_approvals(approver=EMMA)) == 2
    assert sandbox.state.traffic["yardi"].requests == 2
    assert len(sleeps.waits) == 1
    sandbox.state.inject("yardi", Fault(503))  # a soap:Server fault in an HTTP 500
    with pytest.raises(SoapServerFaultError) as caught:
        await yardi().pending_approvals(approver=EMMA)
    assert caught.value.fault_code == "soap:Server"
    assert caught.value.status == 500
    assert isinstance(caught.value, UnavailableError)  # the caller retries later
    assert sandbox.state.traffic["yardi"].requests == 3


async def test_a_rate_limited_action_is_not_resent(
    yardi: Yardi, sandbox: RunningSandbox, sleeps: SleepRecorder
) -> None:
    client = yardi()
    first = (await client.pending_approvals(approver=EMMA))[0]
    ids = ApprovalIds(approver=EMMA, workflow_name=first.workflow_name, record_id=first.record_id)
    detail = await client.approval_detail(**ids)
    sandbox.state.inject("yardi", Fault(429, retry_after=3))
    with pytest.raises(RateLimitedError) as caught:
        await client.take_action(**ids, action="Approve", detail=detail)
    assert caught.value.retry_after == 3
    assert sleeps.waits == []
    sandbox.state.inject("yardi", Fault(429, retry_after=3))
    assert await client.pending_approvals(approver=EMMA)  # a read waits and retries
    assert sleeps.waits == [3.0]


async def test_the_envelope_carries_credentials_on_one_line_escaped() -> None:
    credentials = yardi_credentials(password="p<&>'\"", property_id="prop01")
    body = envelope(
        GET_PENDING, namespace(INTERFACE), [*credential_fields(credentials), ("X", "1")]
    )
    text = body.decode()
    assert "\n" not in text
    assert "<Password>p&lt;&amp;&gt;'\"</Password>" in text
    order = [name for name, _ in credential_fields(credentials)]
    assert order == [
        "UserName", "Password", "ServerName", "Database", "Platform", "YardiPropertyId",
        "InterfaceEntity", "InterfaceLicense",
    ]  # fmt: skip
    assert (
        f'<{GET_PENDING} xmlns="http://tempuri.org/YSI.Interfaces.WebServices/{INTERFACE}">' in text
    )
    assert "SANDBOX-LICENSE" not in repr(credentials)
    assert "p<&>" not in repr(credentials)


async def test_requests_name_the_soap_action(yardi: Yardi, sandbox: RunningSandbox) -> None:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(500, text="down")

    client = YardiClient(
        httpx.AsyncClient(transport=httpx.MockTransport(record)),
        base_url="https://yardi.example/12345",
        credentials=yardi_credentials(),
    )
    with pytest.raises(UnavailableError):
        await client.pending_approvals(approver=EMMA)
    request = seen[0]
    assert str(request.url) == "https://yardi.example/12345/webservices/itfleasingapprovals.asmx"
    assert request.headers["SOAPAction"] == f'"{namespace(INTERFACE)}/{GET_PENDING}"'
    assert request.headers["Content-Type"] == "text/xml; charset=utf-8"


def _hostile(body: bytes, status: int = 200) -> YardiClient:
    return YardiClient(
        httpx.AsyncClient(
            transport=httpx.MockTransport(
                lambda r: httpx.Response(status, content=body, headers={"Content-Type": "text/xml"})
            )
        ),
        base_url="https://yardi.example",
        credentials=yardi_credentials(),
        max_response_bytes=64_000,
    )


async def test_a_billion_laughs_answer_is_refused_without_expanding() -> None:
    started = time.perf_counter()
    with pytest.raises(ProtocolError, match="refused unsafe XML"):
        await _hostile(BILLION_LAUGHS).pending_approvals(approver=EMMA)
    with pytest.raises(ProtocolError, match="refused unsafe XML"):
        await _hostile(XXE).pending_approvals(approver=EMMA)
    assert time.perf_counter() - started < 1


async def test_a_billion_laughs_request_is_refused_by_the_sandbox(sandbox: RunningSandbox) -> None:
    url = f"{sandbox.url}/yardi/webservices/itfleasingapprovals.asmx"
    async with httpx.AsyncClient() as http:
        response = await http.post(
            url, content=BILLION_LAUGHS, headers={"Content-Type": "text/xml"}
        )
    assert response.status_code == 500
    assert b"<faultcode>soap:Client</faultcode>" in response.content


def _fault(code: str) -> bytes:
    return (
        b'<?xml version="1.0"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">'
        b"<soap:Body><soap:Fault><faultcode>" + code.encode() + b"</faultcode>"
        b"<faultstring>fault</faultstring></soap:Fault></soap:Body></soap:Envelope>"
    )


async def test_client_faults_leave_the_breaker_closed_and_server_faults_open_it(
    breakers: BreakerRegistry, sleeps: SleepRecorder
) -> None:
    answer = {"code": "soap:Client"}
    scripted = httpx.MockTransport(
        lambda r: httpx.Response(
            500, content=_fault(answer["code"]), headers={"Content-Type": "text/xml"}
        )
    )
    policy = ResiliencePolicy(attempts=1)
    http = build_client(
        "yardi", policy, breakers, transport=scripted, sleep=sleeps, is_failure=is_server_failure
    )
    async with http:
        client = YardiClient(
            http, base_url="https://yardi.example", credentials=yardi_credentials(), tenant="acme"
        )
        for _ in range(5):  # a WSDL mismatch: our request is wrong, Yardi is fine
            with pytest.raises(SoapFaultError):
                await client.pending_approvals(approver=EMMA)
        assert breakers.get("yardi", "acme").state is BreakerState.CLOSED
        answer["code"] = "soap:Server"
        for _ in range(3):
            with pytest.raises(SoapServerFaultError):
                await client.pending_approvals(approver=EMMA)
        assert breakers.get("yardi", "acme").state is BreakerState.OPEN


async def test_a_compressed_fault_is_never_inflated_to_be_classified(
    breakers: BreakerRegistry, sleeps: SleepRecorder
) -> None:
    bomb = gzip.compress(_fault("soap:Client") + b" " * 20_000_000)  # 20 MB in about 20 KB
    headers = {"Content-Type": "text/xml", "Content-Encoding": "gzip"}
    scripted = httpx.MockTransport(lambda r: httpx.Response(500, content=bomb, headers=headers))
    http = build_client(
        "yardi",
        ResiliencePolicy(attempts=1),
        breakers,
        transport=scripted,
        sleep=sleeps,
        is_failure=is_server_failure,
    )
    async with http:
        client = YardiClient(
            http,
            base_url="https://yardi.example",
            credentials=yardi_credentials(),
            tenant="acme",
            max_response_bytes=64_000,
        )
        for _ in range(3):
            with pytest.raises(ProtocolError, match="larger than 64000 bytes"):
                await client.pending_approvals(approver=EMMA)
    # Counted as failures without being read: the client's size cap still applied.
    assert breakers.get("yardi", "acme").state is BreakerState.OPEN


async def test_soap_faults_malformed_and_oversized_answers() -> None:
    fault = (
        b'<?xml version="1.0"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">'
        b"<soap:Body><soap:Fault><faultcode>soap:Client</faultcode>"
        b"<faultstring>Server did not recognize the value of HTTP Header SOAPAction</faultstring>"
        b"</soap:Fault></soap:Body></soap:Envelope>"
    )
    with pytest.raises(SoapFaultError, match="SOAPAction") as caught:
        await _hostile(fault, status=500).pending_approvals(approver=EMMA)
    assert caught.value.fault_code == "soap:Client"
    assert caught.value.status == 500
    with pytest.raises(ProtocolError, match="not XML"):
        await _hostile(b"<unclosed", status=200).pending_approvals(approver=EMMA)
    with pytest.raises(ProtocolError, match="not a SOAP envelope"):
        await _hostile(b"<html/>").pending_approvals(approver=EMMA)
    with pytest.raises(ProtocolError, match="no GetPendingApprovals_LoginResult"):
        await _hostile(fault.replace(b"soap:Fault", b"Other")).pending_approvals(approver=EMMA)
    with pytest.raises(ProtocolError, match="larger than"):
        await _hostile(b"<a>" + b"x" * 70_000 + b"</a>").pending_approvals(approver=EMMA)


async def test_the_sandbox_refuses_unknown_methods_and_soap_actions(
    sandbox: RunningSandbox,
) -> None:
    url = f"{sandbox.url}/yardi/webservices/ItfLeasingApprovals.asmx"
    body = envelope(GET_PENDING, namespace(INTERFACE), credential_fields(yardi_credentials()))
    async with httpx.AsyncClient() as http:
        wrong_action = await http.post(url, content=body, headers={"SOAPAction": '"x/y"'})
        unknown = await http.post(
            url,
            content=envelope("DropTables_Login", namespace(INTERFACE), []),
            headers={"SOAPAction": f'"{namespace(INTERFACE)}/DropTables_Login"'},
        )
        missing = await http.post(f"{sandbox.url}/yardi/webservices/Other.asmx", content=body)
    assert wrong_action.status_code == 500
    assert b"SOAPAction: x/y" in wrong_action.content
    assert unknown.status_code == 500
    assert b"DropTables_Login" in unknown.content
    assert missing.status_code == 404

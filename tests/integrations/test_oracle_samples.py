"""The Oracle Fusion parsers on the sample payloads documented in the reference, and the error
mapping on every documented error shape (served by a stand-in server via httpx.MockTransport)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from app.integrations.errors import (
    AlreadyDecidedError,
    AuthError,
    BadRequestError,
    ConflictError,
    IntegrationError,
    NotFoundError,
    ProtocolError,
    RateLimitedError,
    UnavailableError,
)
from app.integrations.oracle_fusion import OracleFusionClient, parsing
from app.integrations.oracle_fusion.errors import error_detail, error_from_response
from app.integrations.transport.wire import MAX_RETRY_AFTER_SECONDS
from tests.integrations.reference_samples import (
    ACTION_LIST,
    ERROR_DETAILS,
    MANAGER_ROW,
    TASK_LIST,
    V1_WORKER,
    V4_WORKER,
)


def test_the_v3_sample_with_collection_objects() -> None:
    worker = parsing.worker(V4_WORKER["items"][0])
    assert worker.person_id == 300100180313789
    assert worker.person_number == "955160008191551"
    assert worker.work_email is None  # emails is an empty collection
    assert worker.display_name is None  # the root has no name fields
    assert worker.assignment is None  # the relationship carries no assignments here
    assert worker.key is None  # no links in the trimmed sample


def test_the_v1_sample_with_bare_arrays() -> None:
    worker = parsing.worker(V1_WORKER["items"][0])
    assert (worker.first_name, worker.last_name, worker.display_name) == (
        "Donna",
        "Parker",
        "Donna Parker",
    )
    assert worker.work_email == "x@oracle.com"
    assignment = worker.assignment
    assert assignment is not None
    assert assignment.key == "00020000000EACED...78"  # the self link's last segment
    assert assignment.assignment_id == 300100037952130
    assert (assignment.job_code, assignment.department_name) == ("ENG1003", "Europe-West")
    assert assignment.business_unit_name == "Vision Europe Projects"
    assert assignment.legal_employer_name == "Vision Europe"
    assert assignment.location_code is None
    assert assignment.managers == ()


def test_the_manager_sample_is_a_line_manager_reference() -> None:
    row = {
        **V1_WORKER["items"][0]["workRelationships"][0]["assignments"][0],
        "managers": [MANAGER_ROW],
    }
    relationship = {**V1_WORKER["items"][0]["workRelationships"][0], "assignments": [row]}
    worker = parsing.worker({**V1_WORKER["items"][0], "workRelationships": [relationship]})
    assert worker.assignment is not None
    (ref,) = worker.assignment.managers
    assert (ref.manager_type, ref.manager_assignment_id) == ("LINE_MANAGER", 300100037952200)


def test_nulls_and_unknown_fields_are_tolerated() -> None:
    worker = parsing.worker(
        {
            "PersonNumber": None,
            "names": None,
            "emails": "oops",
            "workRelationships": {"items": None},
            "New": 1,
        }
    )
    assert (worker.person_number, worker.display_name, worker.assignment) == ("", None, None)


def test_the_task_list_sample() -> None:
    (task,) = [parsing.task_summary(item) for item in TASK_LIST["items"]]
    assert task.number == 215362
    assert task.assignees == ("app.tester",)
    assert task.created_at == datetime(2024, 11, 14, 12, 10, 28, tzinfo=UTC)
    assert task.assigned_at == datetime(2024, 11, 14, 12, 10, 27, tzinfo=UTC)
    assert (task.category, task.identification_key) == ("Purchasing", "300100155148633")
    assert not task.is_decided
    assert task.due_at is None  # the sample has no dueDate: no deadline


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-11-21 17:00:00", datetime(2024, 11, 21, 17, tzinfo=UTC)),
        ("2024-11-21T17:00:00+02:00", datetime(2024, 11, 21, 15, tzinfo=UTC)),
        ("soon", None),
    ],
)
def test_a_tasks_due_date_is_read_from_due_date(raw: str, expected: datetime | None) -> None:
    task = parsing.task_summary({**TASK_LIST["items"][0], "dueDate": raw})
    assert task.due_at == expected


def test_the_action_list_sample() -> None:
    detail = parsing.task_detail({**TASK_LIST["items"][0], "actionList": ACTION_LIST})
    assert [a.id for a in detail.actions] == ["DELEGATE", "REASSIGN", "APPROVE", "REJECT"]
    assert detail.offers("approve")
    assert not detail.offers("ESCALATE")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-11-14 12:10:28", datetime(2024, 11, 14, 12, 10, 28, tzinfo=UTC)),
        ("2024-11-14T12:10:28Z", datetime(2024, 11, 14, 12, 10, 28, tzinfo=UTC)),
        ("2024-11-14T14:10:28+02:00", datetime(2024, 11, 14, 12, 10, 28, tzinfo=UTC)),
        ("14/11/2024", None),
        ("", None),
        (None, None),
    ],
)
def test_bpm_dates(raw: str | None, expected: datetime | None) -> None:
    assert parsing.bpm_datetime(raw) == expected


def _response(
    status: int, body: str | bytes = b"", headers: dict[str, str] | None = None
) -> httpx.Response:
    content = body.encode() if isinstance(body, str) else body
    return httpx.Response(
        status, content=content, headers=headers, request=httpx.Request("GET", "http://x")
    )


def test_error_details_are_read_from_o_error_details_then_text() -> None:
    import json

    assert error_detail(_response(400, json.dumps(ERROR_DETAILS))) == "JBO-27024: ..."
    text = "Invalid operation create for the specified resource."
    assert error_detail(_response(400, text)) == text
    assert error_detail(_response(404, '{"title": "Not Found"}')) == "Not Found"
    assert error_detail(_response(503)) == "Service Unavailable"
    assert error_detail(_response(500, "{not json")) == "{not json"
    assert len(error_detail(_response(500, "x" * 5000))) == 500


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, BadRequestError),
        (401, AuthError),
        (403, AuthError),
        (404, NotFoundError),
        (405, BadRequestError),
        (409, ConflictError),
        (412, ConflictError),
        (415, BadRequestError),
        (429, RateLimitedError),
        (500, UnavailableError),
        (503, UnavailableError),
        (504, UnavailableError),
        (302, ProtocolError),
    ],
)
def test_every_status_maps_to_a_typed_error(status: int, kind: type[IntegrationError]) -> None:
    error = error_from_response(_response(status, "boom"))
    assert type(error) is kind
    assert (error.status, error.integration) == (status, "oracle_fusion")
    assert error.detail.endswith("boom")


def test_rate_limits_carry_the_retry_after() -> None:
    assert error_from_response(_response(429, "", {"Retry-After": "7"})).retry_after == 7
    date = _response(429, "", {"Retry-After": "Wed, 21 Oct 2099 07:28:00 GMT"})
    assert error_from_response(date).retry_after == MAX_RETRY_AFTER_SECONDS  # capped at a day
    assert error_from_response(_response(429, "", {"Retry-After": "soon"})).retry_after is None
    assert (
        error_from_response(_response(409), conflict=AlreadyDecidedError).__class__
        is AlreadyDecidedError
    )


def _client(handler: Any, version: int = 4) -> OracleFusionClient:
    return OracleFusionClient(
        httpx.AsyncClient(transport=httpx.MockTransport(handler)),
        base_url="http://fusion.example",
        auth=httpx.BasicAuth("u", "p"),
        framework_version=version,
    )


async def test_non_json_and_shapeless_answers_are_protocol_errors() -> None:
    with pytest.raises(ProtocolError):
        await _client(lambda r: httpx.Response(200, text="<html>login</html>")).get_task(1)
    with pytest.raises(ProtocolError):
        await _client(lambda r: httpx.Response(200, json=[1, 2])).get_task(1)
    with pytest.raises(ProtocolError):
        await _client(lambda r: httpx.Response(200, json={"title": "no number"})).get_task(1)
    with pytest.raises(ProtocolError):
        await _client(lambda r: httpx.Response(200, json={"count": 0})).get_worker(
            person_number="1"
        )


async def test_a_worklist_that_never_ends_is_cut_off() -> None:
    def endless(request: httpx.Request) -> httpx.Response:
        offset = int(request.url.params["offset"])
        return httpx.Response(200, json={"items": [{"number": offset + 1}], "hasMore": True})

    client = _client(endless)
    client.max_pages = 5
    with pytest.raises(ProtocolError, match="more than 5 pages"):
        await client.list_tasks()


async def test_requests_carry_the_version_header_accept_and_query_syntax() -> None:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"items": []})

    for version in (1, 4):
        with pytest.raises(NotFoundError):
            await _client(record, version).get_worker(person_number="955160008178430")
    v1, v4 = seen
    assert v1.headers["REST-Framework-Version"] == "1"
    assert v1.url.params["q"] == "PersonNumber=955160008178430"
    assert v4.url.params["q"] == "PersonNumber='955160008178430'"
    assert "application/vnd.oracle.adf.error+json" in v4.headers["Accept"]
    assert v4.url.params["expand"] == "names,emails,workRelationships.assignments.managers"
    assert v4.headers["Authorization"].startswith("Basic ")


async def test_an_action_is_sent_as_bpm_documents_it() -> None:
    seen: list[httpx.Request] = []

    def bpm(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        task = {**TASK_LIST["items"][0], "actionList": ACTION_LIST}
        if request.method == "PUT":
            task = {**task, "state": "COMPLETED", "outcome": "APPROVE", "actionList": []}
        return httpx.Response(200, json=task)

    done = await _client(bpm).act_on_task(215362, action="approve", comment="Looks good")
    put = seen[-1]
    assert (put.method, put.url.path) == ("PUT", "/bpm/api/4.0/tasks/215362")
    import json

    assert json.loads(put.content) == {
        "action": {"id": "APPROVE"},
        "comment": {"commentStr": "Looks good", "commentScope": "TASK"},
    }
    assert "REST-Framework-Version" not in put.headers  # BPM is not an ADF resource
    assert done.is_decided

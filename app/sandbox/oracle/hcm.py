"""Simulated HCM: ``workers`` (with names, emails, workRelationships.assignments.managers) and
``publicWorkers``, in the shape of the requested ``REST-Framework-Version``."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app.sandbox.data import ASSIGNMENT_ID_BASE, DEPARTMENTS, PERSON_ID_BASE, Person
from app.sandbox.oracle.common import (
    ADF_COLLECTION,
    ADF_ITEM,
    OracleError,
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

HCM = "/hcmRestApi/resources/11.13.18.05"
WORKER_CHILDREN = {
    "names": (),
    "emails": (),
    "workRelationships": (),
    "workRelationships.assignments": (),
    "workRelationships.assignments.managers": (),
}
WORKER_QUERYABLE = {
    "PersonNumber",
    "PersonId",
    "workRelationships.assignments.AssignmentId",
    "workRelationships.assignments.AssignmentNumber",
}
PUBLIC_QUERYABLE = {"PersonNumber", "PersonId", "Username"}
KEY_PREFIX = "00020000000EACED0005770800"
KEY_SUFFIX = "0000004AACED00057372000D6A6176612E73716C2E4461746514FA46683F3566970200007870"


def worker_key(person_id: int) -> str:
    """An opaque key in the style of ``workersUniqID`` (clients must not build these)."""
    return f"{KEY_PREFIX}{person_id:016X}{KEY_SUFFIX}"


def id_of_key(key: str) -> int | None:
    if not (key.startswith(KEY_PREFIX) and key.endswith(KEY_SUFFIX)):
        return None
    try:
        return int(key[len(KEY_PREFIX) : -len(KEY_SUFFIX)], 16)
    except ValueError:
        return None


def _matches(request: Request, version: int) -> list[int]:
    state = state_of(request)
    data = state.data
    conditions = parse_q(request, version, WORKER_QUERYABLE)
    candidates: set[int] | None = None

    def narrow(found: int | None) -> None:
        nonlocal candidates
        here = {found} if found is not None else set()
        candidates = here if candidates is None else candidates & here

    for name, value in conditions.items():
        if name == "PersonNumber":
            narrow(data.index_of_number(value))
        elif name == "PersonId":
            narrow(data.index_of_id(int(value), PERSON_ID_BASE) if value.isdigit() else None)
        elif name == "workRelationships.assignments.AssignmentId":
            narrow(data.index_of_id(int(value), ASSIGNMENT_ID_BASE) if value.isdigit() else None)
        else:
            narrow(data.index_of_number(value[1:]) if value.startswith("E") else None)
    if candidates is None:
        return list(range(min(data.users, 10_000)))
    return sorted(candidates)


def _names(person: Person) -> list[dict[str, Any]]:
    return [
        {
            "PersonNameId": person.person_id + 7,
            "EffectiveStartDate": person.hire_date.isoformat(),
            "EffectiveEndDate": "4712-12-31",
            "LegislationCode": "US",
            "LastName": person.last_name,
            "FirstName": person.first_name,
            "MiddleNames": None,
            "Title": None,
            "Suffix": None,
            "KnownAs": None,
            "DisplayName": person.display_name,
            "ListName": f"{person.last_name}, {person.first_name}",
            "FullName": person.display_name,
            "LocalDisplayName": person.display_name,
        }
    ]


def _emails(person: Person) -> list[dict[str, Any]]:
    home = f"{person.first_name}.{person.last_name}.{person.person_number}@mail.example.net"
    rows = [
        {
            "EmailAddressId": person.person_id + 3,
            "EmailType": "H1",
            "EmailAddress": home.lower(),
            "PrimaryFlag": False,
        },
        {
            "EmailAddressId": person.person_id + 4,
            "EmailType": "W1",
            "EmailAddress": person.email,
            "PrimaryFlag": True,
        },
    ]
    for row in rows:
        row.update(FromDate=person.hire_date.isoformat(), ToDate="4712-12-31")
    return rows


def _managers(request: Request, person: Person) -> list[dict[str, Any]]:
    data = state_of(request).data
    rows = []
    if person.manager_index is not None:
        manager = data.person(person.manager_index)
        rows.append(("LINE_MANAGER", "Line Manager", manager))
    if person.index % 7 == 3 and data.users > 2:
        project = data.person((person.index + 2) % data.users)
        rows.append(("PROJECT_MANAGER", "Project Manager", project))
    return [
        {
            "AssignmentSupervisorId": person.assignment_id * 10 + n,
            "ManagerAssignmentId": manager.assignment_id,
            "ManagerAssignmentNumber": manager.assignment_number,
            "ManagerType": kind,
            "ManagerTypeMeaning": meaning,
            "ActionCode": "MANAGER_CHANGE",
            "ReasonCode": None,
            "EffectiveStartDate": person.hire_date.isoformat(),
            "EffectiveEndDate": "4712-12-31",
        }
        for n, (kind, meaning, manager) in enumerate(rows)
    ]


def worker_item(request: Request, person: Person, version: int, expand: set[str]) -> dict[str, Any]:
    """One ``workers`` item with the requested children in the version's shape."""
    data = state_of(request).data
    links = not only_data(request)
    href = f"{base_url(request)}{HCM}/workers/{worker_key(person.person_id)}"
    item: dict[str, Any] = {
        "PersonId": person.person_id,
        "PersonNumber": person.person_number,
        "CorrespondenceLanguage": None,
        "BloodType": None,
        "DateOfBirth": f"19{70 + person.index % 30}-0{1 + person.index % 9}-15",
        "DateOfDeath": None,
        "CountryOfBirth": None,
        "CreatedBy": "HCM_SANDBOX",
        "CreationDate": f"{person.hire_date.isoformat()}T08:00:00+00:00",
        "LastUpdatedBy": "HCM_SANDBOX",
        "LastUpdateDate": f"{person.hire_date.isoformat()}T08:00:00.000+00:00",
    }
    if links:
        item["links"] = item_links(href, "workers", ("names", "emails", "workRelationships"))
    if "names" in expand:
        item["names"] = child_value(_names(person), version, f"{href}/child/names")
    if "emails" in expand:
        item["emails"] = child_value(_emails(person), version, f"{href}/child/emails")
    if "workRelationships" in expand:
        rel_href = f"{href}/child/workRelationships/{person.period_of_service_id}"
        relationship: dict[str, Any] = {
            "PeriodOfServiceId": person.period_of_service_id,
            "LegislationCode": "US",
            "LegalEntityId": 300100074901955,
            "LegalEmployerName": "Vision Corporation",
            "WorkerType": "E",
            "PrimaryFlag": True,
            "StartDate": person.hire_date.isoformat(),
            "TerminationDate": None,
        }
        if links:
            relationship["links"] = item_links(rel_href, "workRelationships", ("assignments",))
        if "workRelationships.assignments" in expand:
            asg_href = f"{rel_href}/child/assignments/{worker_key(person.assignment_id)}"
            assignment: dict[str, Any] = {
                "AssignmentId": person.assignment_id,
                "AssignmentNumber": person.assignment_number,
                "AssignmentName": person.job_name,
                "AssignmentStatusType": "ACTIVE",
                "AssignmentStatusTypeCode": "ACTIVE_PROCESS",
                "PrimaryAssignmentFlag": True,
                "BusinessUnitId": 300100037681347,
                "BusinessUnitName": "Vision Operations",
                "DepartmentId": 300100037658000 + DEPARTMENTS.index(person.department),
                "DepartmentName": person.department,
                "JobId": 300100037657900 + person.index % 6,
                "JobCode": person.job_code,
                "LocationId": None,
                "LocationCode": None,
                "PositionId": None,
                "PositionCode": None,
                "GradeId": None,
                "GradeCode": None,
                "ManagerFlag": data.has_reports(person.index),
                "UserPersonType": "Employee",
                "SystemPersonType": "EMP",
                "ActionCode": "HIRE",
                "ReasonCode": None,
                "EffectiveStartDate": person.hire_date.isoformat(),
                "EffectiveEndDate": "4712-12-31",
                "EffectiveSequence": 1,
                "EffectiveLatestChange": "Y",
            }
            if links:
                assignment["links"] = item_links(
                    asg_href, "assignments", ("managers", "allReports")
                )
            if "workRelationships.assignments.managers" in expand:
                assignment["managers"] = child_value(
                    _managers(request, person), version, f"{asg_href}/child/managers"
                )
            relationship["assignments"] = child_value(
                [assignment], version, f"{rel_href}/child/assignments"
            )
        item["workRelationships"] = child_value(
            [relationship], version, f"{href}/child/workRelationships"
        )
    fields = request.query_params.get("fields")
    if fields:
        wanted = {f.strip() for f in fields.split(";")[0].split(",")}
        item = {k: v for k, v in item.items() if k in wanted or k == "links"}
    return item


def _json(body: dict[str, Any], media_type: str) -> Response:
    return JSONResponse(body, media_type=media_type)


async def workers(request: Request) -> Response:
    """``GET /workers``: query by person number, person id or assignment."""
    authenticate(request)
    version = framework_version(request)
    if request.query_params.get("finder"):
        raise OracleError(400, "The finder is not supported by the sandbox.", code="27559")
    expand = expansions(request, WORKER_CHILDREN)
    matches = _matches(request, version)
    page, has_more, limit, offset = paged(matches, request)
    data = state_of(request).data
    items = [worker_item(request, data.person(i), version, expand) for i in page]
    return _json(
        collection(
            request, items, has_more=has_more, limit=limit, offset=offset, total=len(matches)
        ),
        ADF_COLLECTION,
    )


async def worker(request: Request) -> Response:
    """``GET /workers/{workersUniqID}``."""
    authenticate(request)
    version = framework_version(request)
    person_id = id_of_key(request.path_params["key"])
    data = state_of(request).data
    index = data.index_of_id(person_id, PERSON_ID_BASE) if person_id is not None else None
    if index is None:
        raise OracleError(404, "The requested resource was not found.", code="27556")
    return _json(
        worker_item(request, data.person(index), version, expansions(request, WORKER_CHILDREN)),
        ADF_ITEM,
    )


async def public_workers(request: Request) -> Response:
    """``GET /publicWorkers``: the read-only directory, queried by username or number."""
    authenticate(request)
    version = framework_version(request)
    data = state_of(request).data
    conditions = parse_q(request, version, PUBLIC_QUERYABLE)
    matches: list[int]
    if not conditions:
        matches = list(range(min(data.users, 10_000)))
    else:
        found: set[int] | None = None
        for name, value in conditions.items():
            if name == "Username":
                index = data.index_of_username(value)
            elif name == "PersonNumber":
                index = data.index_of_number(value)
            else:
                index = data.index_of_id(int(value), PERSON_ID_BASE) if value.isdigit() else None
            here = {index} if index is not None else set()
            found = here if found is None else found & here
        matches = sorted(found or ())
    page, has_more, limit, offset = paged(matches, request)
    items = []
    for index in page:
        person = data.person(index)
        item: dict[str, Any] = {
            "PersonId": person.person_id,
            "PersonNumber": person.person_number,
            "DisplayName": person.display_name,
            "FirstName": person.first_name,
            "LastName": person.last_name,
            "KnownAs": None,
            "WorkEmail": person.email,
            "Username": person.username,
        }
        fields = request.query_params.get("fields")
        if fields:
            wanted = {f.strip() for f in fields.split(",")}
            item = {k: v for k, v in item.items() if k in wanted}
        if not only_data(request):
            item["links"] = item_links(
                f"{base_url(request)}{HCM}/publicWorkers/{person.person_id}", "publicWorkers"
            )
        items.append(item)
    return _json(
        collection(
            request, items, has_more=has_more, limit=limit, offset=offset, total=len(matches)
        ),
        ADF_COLLECTION,
    )

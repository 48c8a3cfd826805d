"""The Oracle Fusion sandbox on the wire: framework versions, query syntax, ADF shapes, auth."""

from __future__ import annotations

import httpx
import pytest

from tests.integrations.conftest import RunningSandbox

HCM = "/oracle/hcmRestApi/resources/11.13.18.05"
BASIC = ("integration", "sandbox-password")
ADF_ERROR = "application/vnd.oracle.adf.error+json"


async def get(sandbox: RunningSandbox, path: str, **kwargs: object) -> httpx.Response:
    async with httpx.AsyncClient(auth=kwargs.pop("auth", BASIC)) as http:  # type: ignore[arg-type]
        return await http.get(f"{sandbox.url}{path}", **kwargs)  # type: ignore[arg-type]


async def test_hcm_defaults_to_version_1_and_honours_the_header(sandbox: RunningSandbox) -> None:
    params = {"q": "PersonNumber=100002", "expand": "workRelationships.assignments.managers"}
    v1 = (await get(sandbox, f"{HCM}/workers", params=params)).json()
    relationships = v1["items"][0]["workRelationships"]
    assert isinstance(relationships, list)
    assert isinstance(relationships[0]["assignments"], list)
    v3 = await get(
        sandbox,
        f"{HCM}/workers",
        params={**params, "q": "PersonNumber='100002'"},
        headers={"REST-Framework-Version": "3"},
    )
    assert v3.headers["content-type"].startswith(
        "application/vnd.oracle.adf.resourcecollection+json"
    )
    nested = v3.json()["items"][0]["workRelationships"]["items"][0]["assignments"]
    assert nested["count"] == 1
    assert nested["items"][0]["managers"]["items"][0]["ManagerType"] == "LINE_MANAGER"
    bad = await get(sandbox, f"{HCM}/workers", headers={"REST-Framework-Version": "99"})
    assert bad.status_code == 400


async def test_query_syntax_follows_the_version(sandbox: RunningSandbox) -> None:
    qbe_on_v4 = await get(
        sandbox,
        f"{HCM}/workers",
        params={"q": "PersonNumber=100002;PersonId=1"},
        headers={"REST-Framework-Version": "4", "Accept": f"application/json, {ADF_ERROR}"},
    )
    assert qbe_on_v4.status_code == 400
    assert qbe_on_v4.headers["content-type"].startswith(ADF_ERROR)
    body = qbe_on_v4.json()
    assert body["status"] == "400"
    assert body["o:errorDetails"][0]["o:errorCode"] == "27024"
    plain = await get(
        sandbox, f"{HCM}/workers", params={"q": "Salary>1"}, headers={"REST-Framework-Version": "4"}
    )
    assert plain.status_code == 400
    assert plain.headers["content-type"].startswith("text/plain")
    quoted_on_v1 = await get(sandbox, f"{HCM}/workers", params={"q": "PersonNumber='100002'"})
    assert quoted_on_v1.json()["items"] == []  # query-by-example takes the quotes literally
    unknown = await get(sandbox, f"{HCM}/workers", params={"q": "Salary=1"})
    assert unknown.status_code == 400


async def test_only_data_fields_paging_and_total_results(sandbox: RunningSandbox) -> None:
    lean = (await get(sandbox, f"{HCM}/workers", params={"onlyData": "true", "limit": "3"})).json()
    assert "links" not in lean
    assert all("links" not in item for item in lean["items"])
    assert (lean["count"], lean["hasMore"], lean["limit"]) == (3, True, 3)
    last = (
        await get(sandbox, f"{HCM}/workers", params={"offset": "48", "totalResults": "true"})
    ).json()
    assert (last["count"], last["hasMore"], last["totalResults"]) == (2, False, 50)
    fields = (
        await get(
            sandbox,
            f"{HCM}/workers",
            params={"fields": "PersonNumber", "expand": "names", "limit": "1"},
        )
    ).json()
    assert set(fields["items"][0]) == {"PersonNumber", "links"}  # fields wins over expand
    child = await get(sandbox, f"{HCM}/workers", params={"expand": "photos"})
    assert child.status_code == 400


async def test_unknown_item_keys_are_404(sandbox: RunningSandbox) -> None:
    response = await get(sandbox, f"{HCM}/workers/00020000000EACED", headers={"Accept": ADF_ERROR})
    assert response.status_code == 404
    assert response.json()["o:errorDetails"][0]["detail"]


@pytest.mark.parametrize(
    "auth",
    [None, ("integration", "wrong"), ("nobody", "sandbox-password")],
)
async def test_without_valid_credentials_the_answer_is_401(
    sandbox: RunningSandbox, auth: tuple[str, str] | None
) -> None:
    async with httpx.AsyncClient(auth=auth) as http:
        response = await http.get(f"{sandbox.url}/oracle/bpm/api/4.0/tasks")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    garbage = await get(
        sandbox, "/oracle/bpm/api/4.0/tasks", auth=None, headers={"Authorization": "Basic !!!"}
    )
    assert garbage.status_code == 401
    bearer = await get(
        sandbox, "/oracle/bpm/api/4.0/tasks", auth=None, headers={"Authorization": "Bearer x.y.z"}
    )
    assert bearer.status_code == 401


async def test_bpm_answers(sandbox: RunningSandbox) -> None:
    user = ("emma.employee", "sandbox-password")
    everything = (
        await get(sandbox, "/oracle/bpm/api/4.0/tasks", auth=user, params={"limit": "0"})
    ).json()
    assert everything["count"] == 4
    assert not everything["hasMore"]
    first = everything["items"][0]
    assert first["createdDate"][10] == " "
    assert first["href"].endswith(f"/tasks/{first['number']}")
    invalid = await get(sandbox, "/oracle/bpm/api/4.0/tasks/abc", auth=user)
    assert (invalid.status_code, invalid.text) == (
        400,
        "The tasknumber is invalid. No action will be performed.",
    )
    bad_filter = await get(
        sandbox, "/oracle/bpm/api/4.0/tasks", auth=user, params={"assignment": "EVERYONE"}
    )
    assert bad_filter.status_code == 400
    group = (
        await get(sandbox, "/oracle/bpm/api/4.0/tasks", auth=user, params={"assignment": "GROUP"})
    ).json()
    assert group["items"] == []
    async with httpx.AsyncClient(auth=user) as http:
        url = f"{sandbox.url}/oracle/bpm/api/4.0/tasks/{first['number']}"
        no_action = await http.put(url, json={"comment": {"commentStr": "x"}})
        bad_json = await http.put(url, content=b"{", headers={"Content-Type": "application/json"})
        delegate = await http.put(url, json={"action": {"id": "DELEGATE"}})
    assert no_action.status_code == 400
    assert bad_json.status_code == 400
    assert delegate.status_code == 400
    assert "not valid" in delegate.text
    assert sandbox.state.task_decisions == {}


async def test_requisitions_exist_only_behind_purchasing_tasks(sandbox: RunningSandbox) -> None:
    path = "/oracle/fscmRestApi/resources/11.13.18.05/purchaseRequisitions"
    hr_task = 100004  # Emma's first task is an HR one
    hr = (
        await get(sandbox, path, params={"q": f"RequisitionHeaderId={300100400000000 + hr_task}"})
    ).json()
    assert hr["items"] == []
    found = (
        await get(
            sandbox,
            path,
            params={"q": "Requisition=10100006", "expand": "lines"},
            headers={"REST-Framework-Version": "4"},
        )
    ).json()
    (item,) = found["items"]
    assert item["DocumentStatus"] == "PENDING APPROVAL"
    assert item["lines"]["count"] >= 1

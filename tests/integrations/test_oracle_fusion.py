"""The Oracle Fusion client against the sandbox over real HTTP: HCM, BPM, procurement, auth."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from app.integrations.errors import (
    ActionNotAllowedError,
    AlreadyDecidedError,
    AuthError,
    BadRequestError,
    NotFoundError,
)
from app.integrations.oracle_fusion import JwtSigner, OracleFusionClient
from app.sandbox.data import EPOCH
from tests.integrations.conftest import FakeClock, RunningSandbox

Oracle = Callable[..., OracleFusionClient]
EMMA = "EMMA.EMPLOYEE"


@pytest.mark.parametrize("version", [1, 2, 3, 4, 8])
async def test_worker_reads_the_same_in_every_framework_version(
    oracle: Oracle, version: int
) -> None:
    worker = await oracle(version=version).get_worker(person_number="100002")
    assert worker.person_number == "100002"
    assert (worker.first_name, worker.last_name, worker.display_name) == (
        "Emma",
        "Employee",
        "Emma Employee",
    )
    assert worker.work_email == "emma.employee@example.com"  # W1, not the H1 listed first
    assignment = worker.assignment
    assert assignment is not None
    assert assignment.primary
    assert assignment.status == "ACTIVE"
    assert assignment.assignment_number == "E100002"
    assert assignment.business_unit_name == "Vision Operations"
    assert assignment.job_code == "MGR9001"  # Emma has direct reports
    assert [m.person_number for m in worker.line_managers] == ["100001"]
    manager = worker.line_managers[0]
    assert (manager.display_name, manager.work_email) == ("Alex Admin", "alex.admin@example.com")


async def test_the_wire_shape_follows_the_framework_version(sandbox: RunningSandbox) -> None:
    url = f"{sandbox.url}/oracle/hcmRestApi/resources/11.13.18.05/workers"
    params = {"q": "PersonNumber=100002", "expand": "emails"}
    auth = ("integration", "sandbox-password")
    async with httpx.AsyncClient(auth=auth) as http:
        v1 = (await http.get(url, params=params)).json()
        v4 = (
            await http.get(
                url,
                params={**params, "q": "PersonNumber='100002'"},
                headers={"REST-Framework-Version": "4"},
            )
        ).json()
    assert isinstance(v1["items"][0]["emails"], list)
    assert isinstance(v4["items"][0]["emails"], dict)
    assert v4["items"][0]["emails"]["count"] == 2


async def test_keys_come_from_self_links_and_address_the_item(
    oracle: Oracle, sandbox: RunningSandbox
) -> None:
    worker = await oracle().get_worker(person_number="100007")
    assert worker.key
    assert worker.assignment
    assert worker.assignment.key
    assert worker.key != worker.assignment.key
    async with httpx.AsyncClient(auth=("integration", "sandbox-password")) as http:
        response = await http.get(
            f"{sandbox.url}/oracle/hcmRestApi/resources/11.13.18.05/workers/{worker.key}"
        )
    assert response.status_code == 200
    assert response.json()["PersonNumber"] == "100007"


async def test_only_line_managers_are_resolved(oracle: Oracle) -> None:
    # Person 3 (Liam Smith) also has a PROJECT_MANAGER row.
    worker = await oracle().get_worker(person_number="100004")
    assert worker.assignment is not None
    types = sorted(m.manager_type or "" for m in worker.assignment.managers)
    assert types == ["LINE_MANAGER", "PROJECT_MANAGER"]
    assert [m.person_number for m in worker.line_managers] == ["100001"]


async def test_the_top_of_the_chain_has_no_line_manager(oracle: Oracle) -> None:
    worker = await oracle().get_worker(person_number="100001")
    assert worker.line_managers == ()


async def test_worker_by_username(oracle: Oracle) -> None:
    worker = await oracle(version=1).get_worker_by_username("olivia.brown")
    assert worker.person_number == "100003"


async def test_unknown_workers_are_not_found(oracle: Oracle) -> None:
    with pytest.raises(NotFoundError):
        await oracle().get_worker(person_number="999999")
    with pytest.raises(NotFoundError):
        await oracle().get_worker_by_username("NOBODY.HERE")


async def test_values_that_would_break_the_query_are_refused(oracle: Oracle) -> None:
    with pytest.raises(BadRequestError):
        await oracle(version=1).get_worker(person_number="1;PersonId=2")
    # Quotes are escaped in the expression syntax: no match, no injection.
    with pytest.raises(NotFoundError):
        await oracle(version=4).get_worker(person_number="100002' or PersonNumber='100003")


async def test_tasks_are_paged_across_pages(oracle: Oracle, sandbox: RunningSandbox) -> None:
    one_page = await oracle(EMMA).list_tasks()
    before = sandbox.state.traffic["oracle"].requests
    paged = await oracle(EMMA, page_size=3).list_tasks()
    assert sandbox.state.traffic["oracle"].requests - before == 2  # 3 + 1, hasMore then not
    assert [t.number for t in paged] == [t.number for t in one_page]
    assert len(one_page) == 4
    assert {t.assignees for t in one_page} == {(EMMA,)}


async def test_tasks_filter_by_category_and_application_context(oracle: Oracle) -> None:
    purchasing = await oracle(EMMA).list_tasks(category="purchasing")
    assert len(purchasing) == 2
    assert {t.task_definition_name for t in purchasing} == {"DocumentApproval"}
    hr = await oracle(EMMA).list_tasks(application_context="hcm")
    assert len(hr) == 2
    assert {t.application_context for t in hr} == {"hcm"}


async def test_bpm_dates_are_parsed_as_utc(oracle: Oracle) -> None:
    task = (await oracle(EMMA).list_tasks())[0]
    assert task.created_at is not None
    assert task.created_at.tzinfo is UTC
    assert task.created_at < EPOCH
    assert task.created_at == task.created_at.replace(microsecond=0)


async def test_the_integration_account_reads_everyones_tasks(oracle: Oracle) -> None:
    everyone = await oracle(page_size=100).list_tasks(assignment="ALL", assignee="emma.employee")
    mine = await oracle(EMMA).list_tasks()
    assert [t.number for t in everyone] == [t.number for t in mine]
    with pytest.raises(AuthError):
        await oracle(EMMA).list_tasks(assignment="ALL")


async def test_new_tasks_appear_over_time(oracle: Oracle, clock: FakeClock) -> None:
    client = oracle(page_size=500)
    before = await client.list_tasks(assignment="ALL")
    clock.advance(3 * 300)
    after = await client.list_tasks(assignment="ALL")
    new = {t.number for t in after} - {t.number for t in before}
    assert len(after) > len(before)
    assert new
    assert all(t.number > max(b.number for b in before) for t in after if t.number in new)


async def test_approving_a_task_changes_its_state_and_requisition(oracle: Oracle) -> None:
    client = oracle(EMMA)
    task = (await client.list_tasks(category="Purchasing"))[0]
    detail = await client.get_task(task.number)
    assert {a.id for a in detail.actions} >= {"APPROVE", "REJECT"}
    assert detail.identification_key is not None
    requisition = await client.get_requisition(int(detail.identification_key))
    assert requisition.status == "PENDING APPROVAL"
    assert requisition.amount == sum(
        (line.quantity or Decimal(0)) * (line.price or Decimal(0)) for line in requisition.lines
    )
    assert requisition.currency in ("USD", "EUR")
    assert requisition.preparer
    assert requisition.number
    assert requisition == await client.get_requisition_by_number(requisition.number)

    done = await client.act_on_task(task.number, action="approve", comment="Within budget")
    assert (done.state, done.outcome) == ("COMPLETED", "APPROVE")
    assert task.number not in {t.number for t in await client.list_tasks()}
    completed = await client.list_tasks(status="COMPLETED")
    assert [t.number for t in completed] == [task.number]
    assert (await client.get_requisition(requisition.header_id)).status == "APPROVED"


async def test_a_decided_task_is_refused_before_and_by_the_server(
    oracle: Oracle, sandbox: RunningSandbox
) -> None:
    client = oracle(EMMA)
    task = (await client.list_tasks())[0]
    stale = await client.get_task(task.number)
    await client.act_on_task(task.number, action="REJECT", task=stale)
    with pytest.raises(AlreadyDecidedError):
        await client.act_on_task(task.number, action="APPROVE")
    # With a stale detail the PUT goes out, and BPM's 409 becomes the same typed error.
    with pytest.raises(AlreadyDecidedError) as caught:
        await client.act_on_task(task.number, action="APPROVE", task=stale)
    assert caught.value.status == 409
    assert "already been completed" in caught.value.detail


async def test_an_action_the_task_does_not_offer_is_refused_before_calling(
    oracle: Oracle, sandbox: RunningSandbox
) -> None:
    client = oracle(EMMA)
    task = await client.get_task((await client.list_tasks())[0].number)
    before = sandbox.state.traffic["oracle"].requests
    with pytest.raises(ActionNotAllowedError):
        await client.act_on_task(task.number, action="ESCALATE", task=task)
    with pytest.raises(BadRequestError):
        await client.act_on_task(task.number, action="  ", task=task)
    assert sandbox.state.traffic["oracle"].requests == before


async def test_someone_elses_task_is_not_found(oracle: Oracle) -> None:
    emma_task = (await oracle(EMMA).list_tasks())[0]
    with pytest.raises(NotFoundError) as caught:
        await oracle("OLIVIA.BROWN").get_task(emma_task.number)
    assert caught.value.detail == "Task not found."  # BPM's plain-text body


async def test_the_integration_account_acts_on_any_task(oracle: Oracle) -> None:
    task = (await oracle(EMMA).list_tasks())[0]
    done = await oracle().act_on_task(task.number, action="APPROVE")
    assert done.outcome == "APPROVE"


async def test_basic_auth_as_a_user_works_and_a_wrong_password_does_not(
    sandbox: RunningSandbox, make_http: Callable[..., httpx.AsyncClient]
) -> None:
    def client(password: str) -> OracleFusionClient:
        return OracleFusionClient(
            make_http(),
            base_url=f"{sandbox.url}/oracle",
            auth=httpx.BasicAuth("liam.smith", password),
        )

    assert len(await client("sandbox-password").list_tasks()) == 4
    with pytest.raises(AuthError) as caught:
        await client("wrong").list_tasks()
    assert caught.value.status == 401


async def test_a_jwt_signed_with_another_key_is_refused(
    oracle: Oracle, sandbox: RunningSandbox
) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    client = oracle(EMMA)
    client.auth = JwtSigner(pem, issuer="intruder").auth_for(EMMA)
    with pytest.raises(AuthError):
        await client.list_tasks()


async def test_an_expired_jwt_is_refused(oracle: Oracle, demo_key: tuple[object, str]) -> None:
    client = oracle(EMMA)
    client.auth = JwtSigner(demo_key[1], issuer="t", clock=lambda: 1_000_000.0).auth_for(EMMA)
    with pytest.raises(AuthError):
        await client.list_tasks()


def test_jwts_name_the_user_and_are_reused_until_near_expiry(demo_key: tuple[object, str]) -> None:
    import jwt

    now = [1_900_000_000.0]
    signer = JwtSigner(
        demo_key[1], issuer="wfh", ttl_seconds=300, key_id="thumb", clock=lambda: now[0]
    )
    token = signer.token_for(EMMA)
    assert signer.token_for(EMMA) == token
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert (header["alg"], header["x5t"]) == ("RS256", "thumb")
    assert (claims["prn"], claims["sub"], claims["iss"]) == (EMMA, EMMA, "wfh")
    assert claims["exp"] - claims["iat"] == 300
    now[0] += 280
    assert signer.token_for(EMMA) != token


def test_the_token_cache_keeps_the_most_recent_users_and_drops_expired_tokens(
    demo_key: tuple[object, str],
) -> None:
    now = [1_900_000_000.0]
    signer = JwtSigner(
        demo_key[1], issuer="wfh", ttl_seconds=300, clock=lambda: now[0], max_cached=2
    )
    first = {user: signer.token_for(user) for user in ("a", "b")}
    assert signer.token_for("a") == first["a"]  # "a" is now the most recent
    signer.token_for("c")  # past the limit: "b", the least recently used, goes
    assert signer.cached() == 2
    assert signer.token_for("a") == first["a"]
    assert signer.token_for("b") != first["b"]
    now[0] += 400  # every token expired: signing one drops the others
    signer.token_for("d")
    assert signer.cached() == 1


def test_weak_or_foreign_keys_are_refused() -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    pem = small.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    with pytest.raises(ValueError, match="2048"):
        JwtSigner(pem, issuer="x")
    with pytest.raises(ValueError, match="PEM"):
        JwtSigner("not a key", issuer="x")


def test_a_framework_version_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="REST-Framework-Version"):
        OracleFusionClient(
            httpx.AsyncClient(),
            base_url="http://x",
            auth=httpx.BasicAuth("a", "b"),
            framework_version=0,
        )


async def test_bpm_created_dates_are_stable(oracle: Oracle) -> None:
    first = await oracle(EMMA).list_tasks()
    second = await oracle(EMMA, version=1).list_tasks()
    assert [t.created_at for t in first] == [t.created_at for t in second]
    assert all(isinstance(t.created_at, datetime) for t in first)

"""Admin REST over the organisation's users: paging, filters, tenancy, lifecycle events."""

from __future__ import annotations

import uuid

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from app.contracts.user import UserCreated, UserCredentialsChanged, UserDeleted, UserUpdated
from app.core.db import session_scope
from app.events.testing import capture_events
from app.modules.user.models import User
from tests.factories import (
    PASSWORD,
    Account,
    create_org,
    create_user,
    log_in,
    logged_in_user,
    login,
    problem_code,
)

USERS = "/api/v1/users"


async def test_an_admin_creates_a_user_who_can_then_log_in(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    body = {
        "email": "New.Person@Example.com",
        "password": "a-good-password",
        "role": "employee",
        "user_type": "CONTRACTOR",
        "first_name": "New",
        "last_name": "Person",
        "oracle_username": "NEW.PERSON",
        "person_number": "900001",
    }
    with capture_events(app.state.emitter) as captured:
        response = await client.post(USERS, headers=admin.headers, json=body)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["email"] == "new.person@example.com"
    assert created["organization_id"] == str(admin.organization_id)
    assert created["display_name"] == "New Person"
    assert (created["role"], created["user_type"]) == ("employee", "CONTRACTOR")
    assert (created["is_active"], created["is_deleted"]) == (True, False)
    assert "password" not in response.text
    event = captured.one(UserCreated)
    assert str(event.user_id) == created["id"]
    assert event.organization_id == admin.organization_id
    assert event.user.email == "new.person@example.com"
    credentials = captured.one(UserCredentialsChanged)
    assert credentials.password_hash.startswith("$argon2id$")
    assert "a-good-password" not in repr(credentials)
    assert captured.names() == ["user.created", "user.credentials.changed"]
    assert (await login(client, "new.person@example.com", "a-good-password")).status_code == 200


async def test_emails_are_unique_per_organisation(
    client: httpx.AsyncClient, admin: Account
) -> None:
    body = {"email": "ADMIN@example.com", "password": "a-good-password"}
    response = await client.post(USERS, headers=admin.headers, json=body)
    assert response.status_code == 409
    assert problem_code(response) == "email_taken"
    elsewhere = await create_org()
    await create_user(elsewhere, email="admin@example.com")  # another tenant may use it


@pytest.mark.parametrize(
    ("body", "location"),
    [
        ({"email": "nope", "password": "a-good-password"}, ("body", "email")),
        ({"email": "a@example.com", "password": ""}, ("body", "password")),
        ({"email": "a@example.com", "password": "short"}, ("body", "password")),
        ({"email": "a@example.com", "password": "long-enough", "role": "root"}, ("body", "role")),
        (
            {"email": "a@example.com", "password": "long-enough", "user_type": "INTERN"},
            ("body", "user_type"),
        ),
        (
            {"email": "a@example.com", "password": "long-enough", "is_admin": True},
            ("body", "is_admin"),
        ),
    ],
)
async def test_bad_user_bodies_are_422(
    client: httpx.AsyncClient, admin: Account, body: dict[str, object], location: tuple[str, ...]
) -> None:
    response = await client.post(USERS, headers=admin.headers, json=body)
    assert response.status_code == 422
    assert problem_code(response) == "validation_error"
    assert [tuple(e["loc"]) for e in response.json()["errors"]] == [location]


async def test_the_list_is_paged_filtered_and_scoped(
    client: httpx.AsyncClient, admin: Account, org: uuid.UUID
) -> None:
    for n in range(4):
        await create_user(org, email=f"emp{n}@example.com")
    contractor = await create_user(org, user_type="CONTRACTOR")
    inactive = await create_user(org)
    await client.patch(
        f"{USERS}/{inactive.user_id}", headers=admin.headers, json={"is_active": False}
    )
    gone = await create_user(org)
    await client.delete(f"{USERS}/{gone.user_id}", headers=admin.headers)
    await create_user(await create_org())  # another tenant's user never shows

    page = (await client.get(USERS, headers=admin.headers, params={"limit": 3})).json()
    assert (page["total"], page["limit"], page["offset"], len(page["items"])) == (7, 3, 0, 3)
    rest = (await client.get(USERS, headers=admin.headers, params={"limit": 3, "offset": 6})).json()
    assert len(rest["items"]) == 1
    seen = {u["id"] for u in page["items"]}
    assert seen.isdisjoint({u["id"] for u in rest["items"]})

    admins = (await client.get(USERS, headers=admin.headers, params={"role": "admin"})).json()
    assert [u["email"] for u in admins["items"]] == ["admin@example.com"]
    typed = (await client.get(USERS, headers=admin.headers, params={"type": "CONTRACTOR"})).json()
    assert [u["id"] for u in typed["items"]] == [str(contractor.user_id)]
    off = (await client.get(USERS, headers=admin.headers, params={"active": "false"})).json()
    assert [u["id"] for u in off["items"]] == [str(inactive.user_id)]
    everyone = await client.get(USERS, headers=admin.headers, params={"include_deleted": "true"})
    assert everyone.json()["total"] == 8
    bad = await client.get(USERS, headers=admin.headers, params={"limit": 0, "type": "NOPE"})
    assert bad.status_code == 422


async def test_another_organisations_user_is_404_everywhere(
    client: httpx.AsyncClient, admin: Account
) -> None:
    foreign = await create_user(await create_org(), email="foreign@example.com")
    for method, url, body in [
        ("GET", f"{USERS}/{foreign.user_id}", None),
        ("PATCH", f"{USERS}/{foreign.user_id}", {"first_name": "Mallory"}),
        ("DELETE", f"{USERS}/{foreign.user_id}", None),
        ("POST", f"/api/v1/admin/users/{foreign.user_id}/resync", None),
    ]:
        response = await client.request(method, url, headers=admin.headers, json=body)
        assert response.status_code == 404, f"{method} {url}"
        assert problem_code(response) == "user_not_found"
    assert (await login(client, "foreign@example.com", PASSWORD)).status_code == 200


async def test_patch_emits_the_changed_field_names(
    app: FastAPI, client: httpx.AsyncClient, admin: Account, org: uuid.UUID
) -> None:
    user = await create_user(org, first_name="Old")
    url = f"{USERS}/{user.user_id}"
    with capture_events(app.state.emitter) as captured:
        response = await client.patch(
            url,
            headers=admin.headers,
            json={"first_name": "New", "role": "admin", "last_name": None},
        )
        same = await client.patch(url, headers=admin.headers, json={"first_name": "New"})
    assert response.status_code == same.status_code == 200
    assert response.json()["first_name"] == "New"
    updated = captured.one(UserUpdated)  # the no-op PATCH emitted nothing
    assert updated.changed_fields == ("first_name", "role")
    assert updated.user.role == "admin"
    for body in ({"email": None}, {"role": None}, {"nickname": "x"}):
        bad = await client.patch(url, headers=admin.headers, json=body)
        assert bad.status_code == 422, body


async def test_patching_the_password_replaces_it(
    app: FastAPI, client: httpx.AsyncClient, admin: Account, org: uuid.UUID
) -> None:
    user = await create_user(org)
    with capture_events(app.state.emitter) as captured:
        response = await client.patch(
            f"{USERS}/{user.user_id}", headers=admin.headers, json={"password": "brand-new-pw"}
        )
    assert response.status_code == 200
    assert captured.names() == ["user.credentials.changed"]
    assert (await login(client, user.email, PASSWORD)).status_code == 401
    assert (await login(client, user.email, "brand-new-pw")).status_code == 200


async def test_changing_the_email_moves_the_login(
    client: httpx.AsyncClient, admin: Account, org: uuid.UUID
) -> None:
    user = await create_user(org)
    taken = await client.patch(
        f"{USERS}/{user.user_id}", headers=admin.headers, json={"email": "admin@example.com"}
    )
    assert problem_code(taken) == "email_taken"
    moved = await client.patch(
        f"{USERS}/{user.user_id}", headers=admin.headers, json={"email": "moved@example.com"}
    )
    assert moved.status_code == 200
    assert (await login(client, "moved@example.com", PASSWORD)).status_code == 200


async def test_delete_is_a_soft_delete(
    app: FastAPI, client: httpx.AsyncClient, admin: Account, org: uuid.UUID
) -> None:
    user = await create_user(org)
    with capture_events(app.state.emitter) as captured:
        response = await client.delete(f"{USERS}/{user.user_id}", headers=admin.headers)
        again = await client.delete(f"{USERS}/{user.user_id}", headers=admin.headers)
    assert response.status_code == again.status_code == 204
    assert captured.one(UserDeleted).user_id == user.user_id
    shown = (await client.get(f"{USERS}/{user.user_id}", headers=admin.headers)).json()
    assert (shown["is_active"], shown["is_deleted"]) == (False, True)
    async with session_scope() as session:
        stored = (await session.scalars(select(User).where(User.id == user.user_id))).one()
    assert stored.deleted_at is not None
    patch = await client.patch(f"{USERS}/{user.user_id}", headers=admin.headers, json={"job": 1})
    assert patch.status_code == 422
    patch = await client.patch(
        f"{USERS}/{user.user_id}", headers=admin.headers, json={"first_name": "Zombie"}
    )
    assert patch.status_code == 409
    assert problem_code(patch) == "user_deleted"


async def test_admins_cannot_delete_deactivate_or_demote_themselves(
    client: httpx.AsyncClient, admin: Account
) -> None:
    url = f"{USERS}/{admin.user_id}"
    for method, body in (
        ("DELETE", None),
        ("PATCH", {"is_active": False}),
        ("PATCH", {"role": "employee"}),
    ):
        response = await client.request(method, url, headers=admin.headers, json=body)
        assert response.status_code == 409
        assert problem_code(response) == "cannot_change_own_access"
    ok = await client.patch(url, headers=admin.headers, json={"first_name": "Alex"})
    assert ok.status_code == 200


async def test_a_failing_listener_never_fails_the_request(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    async def broken(event: UserCreated) -> None:
        raise RuntimeError("listener down")

    app.state.emitter.on(UserCreated, broken)
    response = await client.post(
        USERS, headers=admin.headers, json={"email": "ok@example.com", "password": "a-good-one"}
    )
    assert response.status_code == 201
    assert (await login(client, "ok@example.com", "a-good-one")).status_code == 200


async def test_bad_path_ids_are_422(client: httpx.AsyncClient, admin: Account) -> None:
    response = await client.get(f"{USERS}/not-a-uuid", headers=admin.headers)
    assert response.status_code == 422
    assert problem_code(response) == "validation_error"


async def test_a_demoted_admin_keeps_logging_in_as_employee(
    client: httpx.AsyncClient, admin: Account, org: uuid.UUID
) -> None:
    other = await logged_in_user(client, org, role="admin")
    await client.patch(f"{USERS}/{other.user_id}", headers=admin.headers, json={"role": "employee"})
    again = await log_in(client, other)
    assert (await client.get(USERS, headers=again.headers)).status_code == 403


async def test_huge_paging_numbers_are_422_not_500(
    client: httpx.AsyncClient, admin: Account
) -> None:
    for params in ({"offset": 10**20}, {"offset": 2**63}, {"limit": 10**20}, {"offset": -1}):
        response = await client.get(USERS, params=params, headers=admin.headers)
        assert response.status_code == 422, (params, response.text)
        assert problem_code(response) == "validation_error"
        assert response.headers["content-type"] == "application/problem+json"
    largest = await client.get(USERS, params={"offset": 2**63 - 1}, headers=admin.headers)
    assert largest.status_code == 200, largest.text
    assert largest.json()["items"] == []


async def test_a_delete_whose_session_revocation_fails_is_refused(
    app: FastAPI, client: httpx.AsyncClient, admin: Account, org: uuid.UUID
) -> None:
    user = await logged_in_user(client, org)

    async def revocation_down(event: UserDeleted) -> None:
        raise RuntimeError("revocation down")

    subscription = app.state.emitter.on(UserDeleted, revocation_down)
    refused = await client.delete(f"{USERS}/{user.user_id}", headers=admin.headers)
    assert refused.status_code == 503, refused.text
    assert problem_code(refused) == "session_revocation_failed"
    assert refused.headers["content-type"] == "application/problem+json"
    # Nothing changed: the user is not deleted, and their session is as live as they are.
    shown = (await client.get(f"{USERS}/{user.user_id}", headers=admin.headers)).json()
    assert (shown["is_active"], shown["is_deleted"]) == (True, False)
    assert (await client.get(f"{USERS}/me", headers=user.headers)).status_code == 200

    subscription.off()
    deleted = await client.delete(f"{USERS}/{user.user_id}", headers=admin.headers)
    assert deleted.status_code == 204
    gone = await client.get(f"{USERS}/me", headers=user.headers)
    assert (gone.status_code, problem_code(gone)) == (401, "session_revoked")


async def test_an_access_change_whose_session_update_fails_is_refused(
    client: httpx.AsyncClient,
    admin: Account,
    org: uuid.UUID,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from app.modules.auth import repository as auth_repository
    from app.modules.auth import service as auth_service

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("sessions table unavailable")

    user = await logged_in_user(client, org)
    url = f"{USERS}/{user.user_id}"
    with monkeypatch.context() as patched:
        patched.setattr(auth_service, "revoke_user_sessions", broken)
        patched.setattr(auth_repository, "set_session_access", broken)
        for body in ({"is_active": False}, {"role": "admin"}, {"user_type": "CONTRACTOR"}):
            refused = await client.patch(url, headers=admin.headers, json=body)
            assert refused.status_code == 503, (body, refused.text)
            assert problem_code(refused) == "session_revocation_failed"
        shown = (await client.get(url, headers=admin.headers)).json()
        assert (shown["is_active"], shown["role"], shown["user_type"]) == (
            True,
            "employee",
            "EMPLOYEE",
        )
        # A change that is not about access still never fails on a listener.
        renamed = await client.patch(url, headers=admin.headers, json={"first_name": "Still"})
        assert renamed.status_code == 200
    deactivated = await client.patch(url, headers=admin.headers, json={"is_active": False})
    assert deactivated.status_code == 200
    gone = await client.get(f"{USERS}/me", headers=user.headers)
    assert (gone.status_code, problem_code(gone)) == (401, "session_revoked")

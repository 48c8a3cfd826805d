"""Rotating AUTH_ENCRYPTION_KEY: old keys still read, rotate-key re-seals, lost keys are named."""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from typer.testing import CliRunner

from app.core.db import Database, session_scope
from app.core.settings import SecuritySettings, reset_settings
from app.integrations.connections import repository
from app.integrations.connections.crypto import SecretBox, SecretsUnreadable
from app.integrations.connections.models import IntegrationConnection
from app.integrations.connections.schemas import (
    IntegrationKind,
    OracleFusionChanges,
    OracleFusionConnection,
    YardiChanges,
    YardiConnection,
)
from app.integrations.connections.service import (
    describe_connection,
    get_connection,
    rotate_secrets,
    set_connection,
)
from app.integrations.runtime import Integrations
from tests import factories
from tests.factories import Account, create_org, problem_code

admin = factories.admin
org = factories.org

OLD, NEW, OLDER, LOST = "old-key-0123456789", "new-key-0123456789", "older-key-01234", "lost-key"
PASSWORD = "s3cret-Pa55word"
LICENSE = "MIIB-very-secret-license"
YARDI_BODY: dict[str, object] = {
    "base_url": "https://yardi.example.com/12345/",
    "username": "iface",
    "password": PASSWORD,
    "server_name": "aspdb04",
    "database": "afqoml_live",
    "interface_entity": "Workflow Hub",
    "interface_license": LICENSE,
}


@dataclass
class KeyRing:
    """Sets AUTH_ENCRYPTION_KEY and AUTH_ENCRYPTION_KEYS_PREVIOUS as a deployment would."""

    monkeypatch: pytest.MonkeyPatch

    def use(self, current: str, *previous: str) -> None:
        self.monkeypatch.setenv("AUTH_ENCRYPTION_KEY", current)
        self.monkeypatch.setenv("AUTH_ENCRYPTION_KEYS_PREVIOUS", " , ".join(previous))
        reset_settings()


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> KeyRing:
    return KeyRing(monkeypatch)


@dataclass(frozen=True)
class Stored:
    organization_id: uuid.UUID
    kind: str
    secrets: str
    updated_at: datetime


async def stored(db: Database) -> dict[tuple[uuid.UUID, str], Stored]:
    """Every connection row as the database holds it, read past any process-wide state."""
    async with db.sessionmaker() as session:
        rows = (await session.execute(select(IntegrationConnection))).scalars()
        return {
            (row.organization_id, row.kind): Stored(
                row.organization_id, row.kind, row.secrets, row.updated_at
            )
            for row in rows
        }


async def add_yardi(organization_id: uuid.UUID) -> None:
    async with session_scope() as session:
        await set_connection(
            session,
            organization_id=organization_id,
            kind=IntegrationKind.YARDI,
            changes=YardiChanges.model_validate(YARDI_BODY),
        )


async def add_oracle(organization_id: uuid.UUID) -> None:
    async with session_scope() as session:
        await set_connection(
            session,
            organization_id=organization_id,
            kind=IntegrationKind.ORACLE_FUSION,
            changes=OracleFusionChanges(
                base_url="https://pod.example.com",
                username="integration",
                password=SecretStr(PASSWORD),
            ),
        )


def run_cli(*args: str) -> tuple[int, str, str]:
    from app.cli import _command_runtime, cli
    from app.core.commands import install_command_runtime

    install_command_runtime(_command_runtime)
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_previous_keys_are_parsed_in_order_without_blanks_or_the_current_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AUTH_ENCRYPTION_KEYS_PREVIOUS", raising=False)
    security = SecuritySettings(
        encryption_key=SecretStr(NEW),
        encryption_keys_previous=SecretStr(f" {OLD}, ,{NEW},{OLDER},{OLD}"),
    )
    assert [k.get_secret_value() for k in security.previous_encryption_keys()] == [OLD, OLDER]
    assert OLD not in repr(security)
    assert SecuritySettings(_env_file=None).previous_encryption_keys() == []


def test_the_box_seals_with_the_current_key_and_opens_with_any() -> None:
    old_token = SecretBox(SecretStr(OLD)).seal({"password": PASSWORD})
    box = SecretBox(SecretStr(NEW), [SecretStr(OLDER), SecretStr(OLD)])
    assert box.open(old_token) == {"password": PASSWORD}
    assert not box.sealed_with_current_key(old_token)
    fresh = box.seal({"password": PASSWORD})
    assert box.sealed_with_current_key(fresh)
    resealed = box.reseal(old_token)
    assert SecretBox(SecretStr(NEW)).open(resealed) == {"password": PASSWORD}
    with pytest.raises(SecretsUnreadable):
        box.reseal(SecretBox(SecretStr(LOST)).seal({"password": PASSWORD}))
    with pytest.raises(SecretsUnreadable):
        box.open("not-a-token")
    assert OLD not in repr(box)


async def test_secrets_sealed_with_a_previous_key_still_read(db: Database, keys: KeyRing) -> None:
    keys.use(OLD)
    organization_id = await create_org()
    await add_yardi(organization_id)
    keys.use(NEW, OLDER, OLD)
    async with session_scope() as session:
        connection = await get_connection(
            session, organization_id=organization_id, kind=YardiConnection
        )
        view = await describe_connection(
            session, organization_id=organization_id, kind=IntegrationKind.YARDI
        )
    assert connection.password.get_secret_value() == PASSWORD
    assert connection.interface_license.get_secret_value() == LICENSE
    assert view.settings["password_set"] is True
    before = (await stored(db))[(organization_id, "yardi")].secrets
    assert not SecretBox(SecretStr(NEW)).sealed_with_current_key(before)  # reading rewrites none

    async with session_scope() as session:  # a write seals with the current key
        await set_connection(
            session,
            organization_id=organization_id,
            kind=IntegrationKind.YARDI,
            changes=YardiChanges(property_id="prop01"),
        )
    after = (await stored(db))[(organization_id, "yardi")].secrets
    assert SecretBox(SecretStr(NEW)).open(after) == {
        "password": PASSWORD,
        "interface_license": LICENSE,
    }


async def test_rotate_key_reseals_every_organisation_under_the_current_key(
    db: Database, keys: KeyRing
) -> None:
    keys.use(OLD)
    acme, globex = await create_org("Acme"), await create_org("Globex")
    await add_yardi(acme)
    await add_oracle(acme)
    keys.use(OLDER)
    await add_yardi(globex)
    keys.use(NEW, OLD, OLDER)
    await add_oracle(globex)  # written after the change: already under the new key
    before = await stored(db)

    code, out, err = await asyncio.to_thread(
        run_cli, "integration", "rotate-key", "--batch-size", "2"
    )
    assert code == 0, out + err
    assert "re-encrypted 3 connection(s)" in out
    assert "1 already were" in out
    after = await stored(db)
    assert after.keys() == before.keys()
    only_new = SecretBox(SecretStr(NEW))
    for key, row in after.items():
        secrets = only_new.open(row.secrets)  # the new key alone opens every row
        assert secrets["password"] == PASSWORD
        assert row.updated_at == before[key].updated_at  # no setting changed
    assert after[(globex, "oracle_fusion")].secrets == before[(globex, "oracle_fusion")].secrets

    keys.use(NEW)  # the old keys are dropped: everything still reads
    async with db.sessionmaker() as session:  # the command closed the process database
        connection = await get_connection(session, organization_id=acme, kind=YardiConnection)
        oracle = await get_connection(session, organization_id=globex, kind=OracleFusionConnection)
    assert connection.interface_license.get_secret_value() == LICENSE
    assert oracle.password is not None

    code, out, _ = await asyncio.to_thread(run_cli, "integration", "rotate-key")
    assert code == 0
    assert "re-encrypted 0 connection(s)" in out  # idempotent
    assert "4 already were" in out
    assert await stored(db) == after


async def test_rotate_key_names_what_no_key_opens_and_leaves_it_untouched(
    db: Database, keys: KeyRing
) -> None:
    keys.use(LOST)
    lost = await create_org("Lost Key Ltd")
    await add_oracle(lost)
    keys.use(OLD)
    kept = await create_org("Kept Key Inc")
    await add_yardi(kept)
    keys.use(NEW, OLD)
    before = await stored(db)

    code, out, err = await asyncio.to_thread(run_cli, "integration", "rotate-key")
    assert code == 1
    assert "re-encrypted 1 connection(s)" in out
    assert "1 connection(s) cannot be decrypted" in err
    assert f"oracle_fusion of 'Lost Key Ltd' ({lost})" in err
    assert "AUTH_ENCRYPTION_KEYS_PREVIOUS" in err
    assert "Traceback" not in out + err
    assert PASSWORD not in out + err
    after = await stored(db)
    assert after[(lost, "oracle_fusion")] == before[(lost, "oracle_fusion")]
    assert SecretBox(SecretStr(NEW)).sealed_with_current_key(after[(kept, "yardi")].secrets)

    keys.use(NEW, LOST)  # the lost key is found: a second run finishes the work
    code, out, _ = await asyncio.to_thread(run_cli, "integration", "rotate-key")
    assert code == 0
    assert "re-encrypted 1 connection(s)" in out


async def test_rotation_does_not_overwrite_a_change_made_while_it_runs(
    db: Database, keys: KeyRing, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys.use(OLD)
    organization_id = await create_org()
    await add_yardi(organization_id)
    keys.use(NEW, OLD)
    swap = repository.replace_secrets

    async def an_admin_saves_first(
        session: AsyncSession, *, connection_id: uuid.UUID, sealed: str, resealed: str
    ) -> bool:
        # An admin's PUT commits between the rotation's read of the row and its swap.
        async with session_scope(join=False) as other:
            await set_connection(
                other,
                organization_id=organization_id,
                kind=IntegrationKind.YARDI,
                changes=YardiChanges(password=SecretStr("changed-meanwhile")),
            )
        return await swap(session, connection_id=connection_id, sealed=sealed, resealed=resealed)

    monkeypatch.setattr(repository, "replace_secrets", an_admin_saves_first)
    report = await rotate_secrets()
    assert (report.resealed, report.changed, report.unreadable) == (0, 1, [])
    secrets = (await stored(db))[(organization_id, "yardi")].secrets
    assert SecretBox(SecretStr(NEW)).open(secrets)["password"] == "changed-meanwhile"


async def test_an_unreadable_secret_is_a_clear_problem_everywhere_it_is_read(
    client: httpx.AsyncClient,
    app: FastAPI,
    admin: Account,
    keys: KeyRing,
    caplog: pytest.LogCaptureFixture,
) -> None:
    yardi = "/api/v1/admin/integrations/yardi"
    keys.use(LOST)
    saved = await client.put(yardi, json=YARDI_BODY, headers=admin.headers)
    assert saved.status_code == 200, saved.text
    keys.use(NEW, OLD)
    caplog.set_level(logging.ERROR, logger="app.integrations.connections.service")

    read = await client.get(yardi, headers=admin.headers)
    assert read.status_code == 500
    assert problem_code(read) == "integration_secrets_unreadable"
    problem = read.json()
    assert problem["integration"] == "yardi"
    assert "cannot be decrypted with any configured key" in problem["detail"]
    assert problem["correlation_id"]
    assert PASSWORD not in read.text

    changed = await client.put(yardi, json={"property_id": "p1"}, headers=admin.headers)
    assert changed.status_code == 500
    assert problem_code(changed) == "integration_secrets_unreadable"

    integrations: Integrations = app.state.integrations
    async with session_scope() as session:
        with pytest.raises(SecretsUnreadable) as caught:
            await integrations.yardi(session, organization_id=admin.organization_id)
    assert caught.value.extra == {"integration": "yardi"}

    logged = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(logged) == 3
    assert all(str(admin.organization_id) in m and "yardi" in m for m in logged)
    assert all("AUTH_ENCRYPTION_KEYS_PREVIOUS" in m for m in logged)
    assert PASSWORD not in caplog.text
    assert LOST not in caplog.text

    keys.use(NEW, LOST)  # once the key is configured again, it all reads
    assert (await client.get(yardi, headers=admin.headers)).status_code == 200


async def test_a_connection_whose_key_is_lost_is_removed_and_set_again(
    client: httpx.AsyncClient, admin: Account, keys: KeyRing
) -> None:
    yardi = "/api/v1/admin/integrations/yardi"
    keys.use(LOST)
    assert (await client.put(yardi, json=YARDI_BODY, headers=admin.headers)).status_code == 200
    keys.use(NEW)  # the old key is gone for good
    assert (await client.get(yardi, headers=admin.headers)).status_code == 500
    removed = await client.delete(yardi, headers=admin.headers)
    assert removed.status_code == 204
    gone = await client.get(yardi, headers=admin.headers)
    assert (gone.status_code, problem_code(gone)) == (404, "integration_not_configured")
    again = await client.delete(yardi, headers=admin.headers)
    assert (again.status_code, problem_code(again)) == (404, "integration_not_configured")
    assert (await client.put(yardi, json=YARDI_BODY, headers=admin.headers)).status_code == 200
    assert (await client.get(yardi, headers=admin.headers)).json()["settings"]["password_set"]

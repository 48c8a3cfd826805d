"""Per-organisation connections: secrets sealed at rest, write-only, partial updates, tenancy."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import text
from typer.testing import CliRunner

from app.core.db import Database, session_scope, utcnow
from app.integrations.connections import service
from app.integrations.connections.crypto import SecretBox, SecretsUnreadable
from app.integrations.connections.schemas import (
    IntegrationKind,
    OracleFusionChanges,
    OracleFusionConnection,
    YardiChanges,
    YardiConnection,
)
from app.integrations.connections.service import (
    ConnectionCache,
    IntegrationDisabled,
    IntegrationNotConfigured,
    InvalidIntegrationSettings,
    describe_connection,
    get_connection,
    remove_connection,
    set_connection,
)
from tests.factories import create_org

ORACLE = IntegrationKind.ORACLE_FUSION
YARDI = IntegrationKind.YARDI
PASSWORD = "s3cret-Pa55word"
LICENSE = "MIIB-very-secret-license"


def yardi_changes(**overrides: object) -> YardiChanges:
    values: dict[str, object] = {
        "base_url": "https://yardi.example.com/12345/",
        "username": "iface",
        "password": PASSWORD,
        "server_name": "aspdb04",
        "database": "afqoml_live",
        "interface_entity": "Workflow Hub",
        "interface_license": LICENSE,
    }
    values.update(overrides)
    return YardiChanges.model_validate(values)


async def test_secrets_are_sealed_at_rest_and_never_shown(
    db: Database, demo_key: tuple[Path, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    org = await create_org()
    async with session_scope() as session:
        view = await set_connection(
            session,
            organization_id=org,
            kind=ORACLE,
            changes=OracleFusionChanges(
                base_url="https://pod.oraclecloud.com",
                auth_mode="jwt",
                username="integration",
                password=SecretStr(PASSWORD),
                jwt_private_key=SecretStr(demo_key[1]),
            ),
        )
    shown = view.model_dump_json()
    assert view.settings["password_set"] is True
    assert view.settings["jwt_private_key_set"] is True
    assert "password" not in view.settings
    assert PASSWORD not in shown
    assert "PRIVATE KEY" not in shown
    async with db.engine.connect() as conn:
        row = (
            await conn.execute(text("SELECT options, secrets FROM integration_connections"))
        ).one()
    stored = f"{row.options}{row.secrets}"
    assert PASSWORD not in stored
    assert "PRIVATE KEY" not in stored
    async with session_scope() as session:
        connection = await get_connection(session, organization_id=org, kind=OracleFusionConnection)
    assert connection.password is not None
    assert connection.password.get_secret_value() == PASSWORD
    assert PASSWORD not in repr(connection)
    assert PASSWORD not in caplog.text
    assert "PRIVATE KEY" not in caplog.text


async def test_changes_are_partial_and_keep_secrets(db: Database) -> None:
    org = await create_org()
    async with session_scope() as session:
        await set_connection(session, organization_id=org, kind=YARDI, changes=yardi_changes())
        view = await set_connection(
            session,
            organization_id=org,
            kind=YARDI,
            changes=YardiChanges(base_url="https://yardi2.example.com", property_id="prop01"),
        )
        connection = await get_connection(session, organization_id=org, kind=YardiConnection)
    assert view.settings["base_url"] == "https://yardi2.example.com"
    assert view.settings["interface_license_set"] is True
    assert connection.password.get_secret_value() == PASSWORD
    assert connection.interface_license.get_secret_value() == LICENSE
    assert (connection.property_id, connection.platform) == ("prop01", "SQL Server")


async def test_invalid_settings_name_the_field_not_the_value(db: Database) -> None:
    org = await create_org()
    cases = [
        (
            ORACLE,
            OracleFusionChanges(base_url="https://pod.example", auth_mode="basic", username="u"),
        ),
        (ORACLE, OracleFusionChanges(base_url="https://pod.example", auth_mode="jwt")),
        (
            ORACLE,
            OracleFusionChanges(
                base_url="https://pod.example", auth_mode="jwt", jwt_private_key=SecretStr(PASSWORD)
            ),
        ),
        (
            ORACLE,
            OracleFusionChanges(
                base_url="ftp://pod.example", username="u", password=SecretStr(PASSWORD)
            ),
        ),
        (
            ORACLE,
            OracleFusionChanges(
                base_url="https://u:p@pod.example", username="u", password=SecretStr(PASSWORD)
            ),
        ),
        (
            ORACLE,
            OracleFusionChanges(
                base_url="https://pod.example",
                username="u",
                password=SecretStr(PASSWORD),
                framework_version=12,
            ),
        ),
        (YARDI, yardi_changes(interface_license=None)),
        (YARDI, YardiChanges(base_url="https://yardi.example")),
    ]
    for kind, changes in cases:
        async with session_scope() as session:
            with pytest.raises(InvalidIntegrationSettings) as caught:
                await set_connection(session, organization_id=org, kind=kind, changes=changes)
        assert PASSWORD not in caught.value.detail
        assert caught.value.status == 422
    with pytest.raises(ValueError, match="extra"):
        OracleFusionChanges.model_validate({"base_url": "https://x", "pasword": "typo"})


async def test_each_organisation_sees_only_its_own(db: Database) -> None:
    acme, globex = await create_org(), await create_org()
    async with session_scope() as session:
        await set_connection(session, organization_id=acme, kind=YARDI, changes=yardi_changes())
        with pytest.raises(IntegrationNotConfigured):
            await get_connection(session, organization_id=globex, kind=YardiConnection)
        with pytest.raises(IntegrationNotConfigured):
            await describe_connection(session, organization_id=globex, kind=YARDI)
        with pytest.raises(IntegrationNotConfigured):
            await get_connection(session, organization_id=uuid.uuid4(), kind=OracleFusionConnection)


async def test_a_disabled_connection_is_refused_to_the_clients(db: Database) -> None:
    org = await create_org()
    async with session_scope() as session:
        await set_connection(
            session, organization_id=org, kind=YARDI, changes=yardi_changes(enabled=False)
        )
        with pytest.raises(IntegrationDisabled):
            await get_connection(session, organization_id=org, kind=YardiConnection)
        view = await describe_connection(session, organization_id=org, kind=YARDI)
    assert view.settings["enabled"] is False


async def test_another_key_cannot_open_the_secrets(db: Database) -> None:
    org = await create_org()
    async with session_scope() as session:
        await set_connection(session, organization_id=org, kind=YARDI, changes=yardi_changes())
        with pytest.raises(SecretsUnreadable):
            await get_connection(
                session,
                organization_id=org,
                kind=YardiConnection,
                box=SecretBox(SecretStr("another-key")),
            )


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_the_cache_reuses_an_opened_connection_until_its_row_changes(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    org = await create_org()
    clock = _Clock()
    cache = ConnectionCache(clock=clock)
    opened: list[str] = []
    load = service._load

    def counting_load(row: Any, box: SecretBox) -> Any:
        opened.append(row.kind)
        return load(row, box)

    monkeypatch.setattr(service, "_load", counting_load)

    async def get() -> YardiConnection:
        async with session_scope() as session:
            return await cache.get(session, organization_id=org, kind=YardiConnection)

    async with session_scope() as session:
        with pytest.raises(IntegrationNotConfigured):
            await cache.get(session, organization_id=org, kind=YardiConnection)
        await set_connection(session, organization_id=org, kind=YARDI, changes=yardi_changes())
    first = await get()
    assert (await get()) is first
    clock.now += 60  # past the recheck: the version is read again, and it is the same
    assert (await get()) is first
    assert opened == ["yardi"]

    # Another process changes the row: seen once the recheck is due.
    async with session_scope() as session:
        await session.execute(
            text("UPDATE integration_connections SET base_url = :url, updated_at = :at"),
            {"url": "https://yardi.example.com/moved/", "at": utcnow()},
        )
    assert (await get()).base_url == first.base_url  # within the recheck time
    clock.now += 60
    assert (await get()).base_url == "https://yardi.example.com/moved"
    assert opened == ["yardi", "yardi"]

    # Removed elsewhere: not configured any more.
    async with session_scope() as session:
        await session.execute(text("DELETE FROM integration_connections"))
    clock.now += 60
    with pytest.raises(IntegrationNotConfigured):
        await get()


async def test_a_change_through_this_process_is_seen_at_once(db: Database) -> None:
    org = await create_org()
    cache = service.CONNECTIONS
    async with session_scope() as session:
        await set_connection(session, organization_id=org, kind=YARDI, changes=yardi_changes())
    async with session_scope() as session:
        before = await cache.get(session, organization_id=org, kind=YardiConnection)
    async with session_scope() as session:
        await set_connection(
            session, organization_id=org, kind=YARDI, changes=yardi_changes(enabled=False)
        )
    async with session_scope() as session:
        with pytest.raises(IntegrationDisabled):
            await cache.get(session, organization_id=org, kind=YardiConnection)
        await set_connection(
            session,
            organization_id=org,
            kind=YARDI,
            changes=yardi_changes(username="other", enabled=True),
        )
    async with session_scope() as session:
        after = await cache.get(session, organization_id=org, kind=YardiConnection)
    assert (before.username, after.username) == ("iface", "other")
    async with session_scope() as session:
        await remove_connection(session, organization_id=org, kind=YARDI)
    async with session_scope() as session:
        with pytest.raises(IntegrationNotConfigured):
            await cache.get(session, organization_id=org, kind=YardiConnection)


def test_the_box_derives_a_fernet_key_and_detects_tampering() -> None:
    box = SecretBox(SecretStr("dev-insecure-encryption-key-change-me"))
    token = box.seal({"password": PASSWORD})
    assert PASSWORD not in token
    assert box.open(token) == {"password": PASSWORD}
    assert box.seal({"password": PASSWORD}) != token  # a fresh IV every time
    with pytest.raises(SecretsUnreadable):
        box.open(token[:-4] + "AAAA")
    assert "dev-insecure" not in repr(box)


async def test_the_cli_sets_and_shows_without_printing_secrets(
    db: Database, tmp_path: Path, demo_key: tuple[Path, str]
) -> None:
    from app.cli import _command_runtime, cli
    from app.core.commands import install_command_runtime

    async with session_scope() as session:
        from app.core.tenancy import ensure_organization

        await ensure_organization(session, "Acme CLI")
    password_file = tmp_path / "password"
    password_file.write_text(PASSWORD + "\n")
    install_command_runtime(_command_runtime)
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str]:
        result = runner.invoke(cli, list(args))
        return result.exit_code, result.output

    code, out = await asyncio.to_thread(
        run,
        "integration", "set", "oracle_fusion", "--org", "Acme CLI",
        "--base-url", "https://pod.example.com", "--auth-mode", "jwt", "--username", "integration",
        "--password-file", str(password_file), "--private-key-file", str(demo_key[0]),
        "--framework-version", "3",
    )  # fmt: skip
    assert code == 0, out
    assert PASSWORD not in out
    assert "PRIVATE KEY" not in out
    code, out = await asyncio.to_thread(
        run, "integration", "show", "oracle_fusion", "--org", "Acme CLI"
    )
    assert code == 0, out
    shown = json.loads(out)["settings"]
    assert shown["framework_version"] == 3
    assert shown["password_set"]
    assert shown["jwt_private_key_set"]
    code, out = await asyncio.to_thread(run, "integration", "show", "yardi", "--org", "Acme CLI")
    assert code == 1
    assert "not configured" in out
    code, out = await asyncio.to_thread(
        run, "integration", "set", "yardi", "--org", "Nobody", "--base-url", "https://y.example"
    )
    assert code == 1
    assert "error (not_found): No organisation" in out
    code, out = await asyncio.to_thread(
        run, "integration", "set", "oracle_fusion", "--org", "Acme CLI", "--auth-mode", "magic"
    )
    assert code == 2
    code, out = await asyncio.to_thread(
        run, "integration", "remove", "oracle_fusion", "--org", "Acme CLI"
    )
    assert code == 0, out
    assert "oracle_fusion connection of Acme CLI removed" in out
    code, out = await asyncio.to_thread(
        run, "integration", "remove", "oracle_fusion", "--org", "Acme CLI"
    )
    assert code == 1
    assert "not configured" in out

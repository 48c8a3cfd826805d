"""``python -m app integration ...``: set and show connections; re-seal secrets under a new key.

Secrets are best given as files (``--password-file``, ``--private-key-file``,
``--license-file``) so they stay out of shell history; ``show`` never prints them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import BaseModel

from app.core.commands import run_command
from app.core.db import session_scope
from app.core.errors import AppError
from app.core.tenancy import get_organization_by_name
from app.integrations.connections import service
from app.integrations.connections.schemas import (
    IntegrationKind,
    OracleFusionChanges,
    YardiChanges,
)

integration_cli = typer.Typer(
    help="Per-organisation integration connections (Oracle Fusion, Yardi).", no_args_is_help=True
)
set_cli = typer.Typer(help="Create or change a connection; options left out keep their value.")
integration_cli.add_typer(set_cli, name="set")

Org = Annotated[str, typer.Option("--org", help="The organisation's name.")]
BaseUrl = Annotated[str | None, typer.Option("--base-url", help="The system's base URL.")]
Enabled = Annotated[bool | None, typer.Option("--enabled/--disabled", help="Switch it on or off.")]
Username = Annotated[str | None, typer.Option("--username")]
Password = Annotated[
    str | None, typer.Option("--password", help="Prefer --password-file.", show_default=False)
]
PasswordFile = Annotated[Path | None, typer.Option("--password-file", exists=True, dir_okay=False)]


def _secret(value: str | None, path: Path | None, name: str) -> str | None:
    if value is not None and path is not None:
        raise typer.BadParameter(f"give --{name} or --{name}-file, not both")
    if path is not None:
        return path.read_text().strip()
    return value


def _changes(**values: Any) -> dict[str, Any]:
    return {name: value for name, value in values.items() if value is not None}


@set_cli.command("oracle_fusion")
def set_oracle_fusion(
    org: Org,
    base_url: BaseUrl = None,
    enabled: Enabled = None,
    auth_mode: Annotated[str | None, typer.Option("--auth-mode", help="basic or jwt.")] = None,
    username: Username = None,
    password: Password = None,
    password_file: PasswordFile = None,
    private_key_file: Annotated[
        Path | None,
        typer.Option("--private-key-file", exists=True, dir_okay=False, help="PEM RSA key."),
    ] = None,
    jwt_issuer: Annotated[str | None, typer.Option("--jwt-issuer")] = None,
    jwt_key_id: Annotated[str | None, typer.Option("--jwt-key-id")] = None,
    framework_version: Annotated[int | None, typer.Option("--framework-version")] = None,
) -> None:
    """Set the Oracle Fusion connection of an organisation."""
    values = _changes(
        base_url=base_url,
        enabled=enabled,
        auth_mode=auth_mode,
        username=username,
        password=_secret(password, password_file, "password"),
        jwt_private_key=private_key_file.read_text() if private_key_file else None,
        jwt_issuer=jwt_issuer,
        jwt_key_id=jwt_key_id,
        framework_version=framework_version,
    )
    _apply(org, IntegrationKind.ORACLE_FUSION, _validated(OracleFusionChanges, values))


@set_cli.command("yardi")
def set_yardi(
    org: Org,
    base_url: BaseUrl = None,
    enabled: Enabled = None,
    username: Username = None,
    password: Password = None,
    password_file: PasswordFile = None,
    server_name: Annotated[str | None, typer.Option("--server-name")] = None,
    database: Annotated[str | None, typer.Option("--database")] = None,
    platform: Annotated[str | None, typer.Option("--platform")] = None,
    interface_entity: Annotated[str | None, typer.Option("--interface-entity")] = None,
    interface_license: Annotated[
        str | None, typer.Option("--interface-license", help="Prefer --license-file.")
    ] = None,
    license_file: Annotated[
        Path | None, typer.Option("--license-file", exists=True, dir_okay=False)
    ] = None,
    property_id: Annotated[str | None, typer.Option("--property-id")] = None,
) -> None:
    """Set the Yardi connection of an organisation."""
    values = _changes(
        base_url=base_url,
        enabled=enabled,
        username=username,
        password=_secret(password, password_file, "password"),
        server_name=server_name,
        database=database,
        platform=platform,
        interface_entity=interface_entity,
        interface_license=_secret(interface_license, license_file, "license"),
        property_id=property_id,
    )
    _apply(org, IntegrationKind.YARDI, _validated(YardiChanges, values))


@integration_cli.command("show")
def show(
    kind: Annotated[IntegrationKind, typer.Argument(help="oracle_fusion or yardi.")],
    org: Org,
) -> None:
    """Print a connection as JSON, secrets replaced by whether they are set."""

    async def work() -> str:
        async with session_scope() as session:
            organization_id = await _organization_id(org)
            view = await service.describe_connection(
                session, organization_id=organization_id, kind=kind
            )
            return view.model_dump_json(indent=2)

    typer.echo(run_command(work))


@integration_cli.command("remove")
def remove(
    kind: Annotated[IntegrationKind, typer.Argument(help="oracle_fusion or yardi.")],
    org: Org,
) -> None:
    """Remove a connection and its secrets (the way back from a lost encryption key)."""

    async def work() -> None:
        async with session_scope() as session:
            organization_id = await _organization_id(org)
            await service.remove_connection(session, organization_id=organization_id, kind=kind)

    run_command(work)
    typer.echo(f"{kind.value} connection of {org} removed")


@integration_cli.command("rotate-key")
def rotate_key(
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, max=10_000, help="Rows per transaction.")
    ] = 100,
) -> None:
    """Re-encrypt every organisation's stored secrets under AUTH_ENCRYPTION_KEY.

    Rows are decided one by one, each batch in its own transaction: a row that a previous key
    (AUTH_ENCRYPTION_KEYS_PREVIOUS) opens is re-encrypted, one already under the current key is
    skipped, and one that no configured key opens is left exactly as it was. Never half-written;
    safe to run again. Exits 1, naming the rows, when some secret cannot be decrypted.
    """

    async def work() -> service.SecretsRotation:
        return await service.rotate_secrets(batch_size=batch_size)

    report: service.SecretsRotation = run_command(work)
    typer.echo(
        f"re-encrypted {report.resealed} connection(s) under AUTH_ENCRYPTION_KEY; "
        f"{report.current} already were"
        + (f"; {report.changed} changed while this ran (run again)" if report.changed else "")
    )
    if report.unreadable:
        typer.echo(
            f"error (secrets_unreadable): {len(report.unreadable)} connection(s) cannot be "
            "decrypted with "
            "AUTH_ENCRYPTION_KEY or any key of AUTH_ENCRYPTION_KEYS_PREVIOUS, and were left as "
            "they were:",
            err=True,
        )
        for row in report.unreadable:
            typer.echo(
                f"  {row.kind} of {row.organization_name!r} ({row.organization_id})", err=True
            )
        typer.echo(
            "Add the key that sealed them to AUTH_ENCRYPTION_KEYS_PREVIOUS and run this again, "
            "or, if it is lost, remove each with `integration remove KIND --org NAME` and set "
            "it again.",
            err=True,
        )
        raise typer.Exit(1)


def _validated(model: type[BaseModel], values: dict[str, Any]) -> BaseModel:
    try:
        return model.model_validate(values)
    except ValueError as exc:
        raise typer.BadParameter(str(exc).splitlines()[0]) from None


def _apply(org: str, kind: IntegrationKind, changes: BaseModel) -> None:
    async def work() -> str:
        async with session_scope() as session:
            organization_id = await _organization_id(org)
            view = await service.set_connection(
                session, organization_id=organization_id, kind=kind, changes=changes
            )
            return json.dumps(view.model_dump(mode="json")["settings"], indent=2)

    typer.echo(f"{kind.value} connection of {org} saved:\n{run_command(work)}")


async def _organization_id(name: str) -> Any:
    async with session_scope() as session:
        organization = await get_organization_by_name(session, name)
    if organization is None:
        raise AppError(f"No organisation is named {name!r}.", status=404, code="not_found")
    return organization.id

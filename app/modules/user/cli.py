"""Commands: ``python -m app org create ...`` and ``python -m app user create ...``."""

from __future__ import annotations

from typing import Annotated

import typer
from pydantic import EmailStr, TypeAdapter, ValidationError

from app.core.commands import run_command
from app.core.db import session_scope
from app.core.errors import AppError
from app.core.settings import get_settings
from app.core.tenancy import get_organization_by_name
from app.modules.user import provisioning, service

_EMAIL: TypeAdapter[str] = TypeAdapter(EmailStr)

org_cli = typer.Typer(help="Organisations (tenants).", no_args_is_help=True)
user_cli = typer.Typer(help="Users of an organisation.", no_args_is_help=True)

Password = Annotated[
    str,
    typer.Option(prompt=True, hide_input=True, confirmation_prompt=True, help="At least 8 chars."),
]


@org_cli.command("create")
def create_organization(
    name: Annotated[str, typer.Option("--name", help="The organisation's unique name.")],
    admin_email: Annotated[str, typer.Option("--admin-email", help="Its first admin's email.")],
    admin_password: Annotated[
        str,
        typer.Option(
            "--admin-password", prompt=True, hide_input=True, help="The admin's password."
        ),
    ],
) -> None:
    """Create an organisation and its first admin (role admin, type EMPLOYEE)."""
    _check_email(admin_email)
    _check_password(admin_password)

    async def work() -> str:
        async with session_scope() as session:
            organization, admin = await provisioning.create_organization(
                session,
                settings=get_settings(),
                name=name,
                admin_email=admin_email,
                admin_password=admin_password,
            )
            return f"organisation {organization.name} ({organization.id}), admin {admin.email}"

    typer.echo(f"created {run_command(work)}")


@user_cli.command("create")
def create_user(
    org: Annotated[str, typer.Option("--org", help="The organisation's name.")],
    email: Annotated[str, typer.Option("--email")],
    password: Password,
    role: Annotated[str, typer.Option(help="employee or admin.")] = "employee",
    user_type: Annotated[
        str, typer.Option("--user-type", help="EMPLOYEE, CONTRACTOR or EXTERNAL.")
    ] = "EMPLOYEE",
    first_name: Annotated[str | None, typer.Option("--first-name")] = None,
    last_name: Annotated[str | None, typer.Option("--last-name")] = None,
    oracle_username: Annotated[str | None, typer.Option("--oracle-username")] = None,
    person_number: Annotated[str | None, typer.Option("--person-number")] = None,
) -> None:
    """Add a user to an organisation."""
    _check_email(email)
    _check_password(password)
    if role not in ("employee", "admin"):
        raise typer.BadParameter("role must be employee or admin", param_hint="--role")
    if user_type not in ("EMPLOYEE", "CONTRACTOR", "EXTERNAL"):
        raise typer.BadParameter(
            "user type must be EMPLOYEE, CONTRACTOR or EXTERNAL", param_hint="--user-type"
        )

    async def work() -> str:
        async with session_scope() as session:
            organization = await get_organization_by_name(session, org)
            if organization is None:
                raise AppError(f"No organisation is named {org!r}.", code="organization_not_found")
            user = await service.create_user(
                session,
                settings=get_settings(),
                organization_id=organization.id,
                email=email,
                password=password,
                role=role,
                user_type=user_type,
                first_name=first_name,
                last_name=last_name,
                oracle_username=oracle_username,
                person_number=person_number,
            )
            return f"user {user.email} ({user.id}) in {organization.name}"

    typer.echo(f"created {run_command(work)}")


def _check_password(password: str) -> None:
    if len(password) < 8:
        raise typer.BadParameter("the password needs at least 8 characters")


def _check_email(email: str) -> None:
    try:
        _EMAIL.validate_python(email)
    except ValidationError as exc:
        raise typer.BadParameter(f"{email!r} is not a valid email address") from exc

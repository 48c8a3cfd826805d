"""Per-organisation integration connections: set (partially), read with secrets, describe.

Secrets are sealed with :class:`~app.core.connections.crypto.SecretBox` before they reach the
database and only opened for the integration runtime. Nothing here logs a value.
"""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

from pydantic import BaseModel, SecretStr, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.connections import repository
from app.core.connections.crypto import SecretBox, secret_box
from app.core.connections.models import IntegrationConnection
from app.core.connections.schemas import (
    CONNECTION_TYPES,
    Connection,
    ConnectionView,
    IntegrationKind,
    OracleFusionConnection,
    YardiConnection,
    view_of,
)
from app.core.errors import AppError, Conflict, NotFound
from app.core.settings import get_settings

C = TypeVar("C", bound=Connection)


class IntegrationNotConfigured(NotFound):
    code = "integration_not_configured"
    detail = "The organisation has not configured this integration."


class IntegrationDisabled(Conflict):
    code = "integration_disabled"
    detail = "The organisation has disabled this integration."


class InvalidIntegrationSettings(AppError):
    status = 422
    code = "invalid_integration_settings"
    detail = "The integration settings are invalid."


def _box(box: SecretBox | None) -> SecretBox:
    return box or secret_box(get_settings().security.encryption_key)


def _load(row: IntegrationConnection, box: SecretBox) -> Connection:
    cls = CONNECTION_TYPES[IntegrationKind(row.kind)]
    stored = {**(row.options or {}), **box.open(row.secrets)}
    values = {
        **{name: value for name, value in stored.items() if name in cls.model_fields},
        "base_url": row.base_url,
        "auth_mode": row.auth_mode,
        "enabled": row.enabled,
    }
    return cls.model_validate(values)


async def get_connection(
    session: AsyncSession,
    *,
    organization_id: uuid.UUID,
    kind: type[C],
    box: SecretBox | None = None,
    require_enabled: bool = True,
) -> C:
    """Return the organisation's connection of ``kind`` with its secrets, for the clients.

    Raises:
        IntegrationNotConfigured: nothing is stored for this organisation and kind.
        IntegrationDisabled: it is stored but switched off (unless ``require_enabled=False``).
    """
    row = await repository.get(session, organization_id=organization_id, kind=kind.kind.value)
    if row is None:
        raise IntegrationNotConfigured(
            f"{kind.kind.value} is not configured for this organisation."
        )
    connection = _load(row, _box(box))
    if require_enabled and not connection.enabled:
        raise IntegrationDisabled(f"{kind.kind.value} is disabled for this organisation.")
    assert isinstance(connection, kind)
    return connection


async def describe_connection(
    session: AsyncSession,
    *,
    organization_id: uuid.UUID,
    kind: IntegrationKind,
    box: SecretBox | None = None,
) -> ConnectionView:
    """Return the connection as admins see it: no secret, only whether each one is set."""
    row = await repository.get(session, organization_id=organization_id, kind=kind.value)
    if row is None:
        raise IntegrationNotConfigured(f"{kind.value} is not configured for this organisation.")
    return view_of(_load(row, _box(box)), updated_at=row.updated_at)


async def set_connection(
    session: AsyncSession,
    *,
    organization_id: uuid.UUID,
    kind: IntegrationKind,
    changes: BaseModel,
    box: SecretBox | None = None,
) -> ConnectionView:
    """Create or change the organisation's connection; fields left out keep their value.

    Raises:
        InvalidIntegrationSettings: the result would be incomplete or invalid (a basic
            connection without a password, a key that is not RSA...).
    """
    box = _box(box)
    cls = CONNECTION_TYPES[kind]
    row = await repository.get(session, organization_id=organization_id, kind=kind.value)
    current: dict[str, Any] = _plain(_load(row, box)) if row is not None else {}
    merged = {**current, **_plain_changes(changes)}
    try:
        connection = cls.model_validate(merged)
    except ValidationError as exc:
        raise InvalidIntegrationSettings(_describe(exc)) from None
    secrets = {
        name: value.get_secret_value()
        for name in cls.secret_fields
        if isinstance(value := getattr(connection, name), SecretStr) and value.get_secret_value()
    }
    options = {
        name: getattr(connection, name)
        for name in cls.model_fields
        if name not in cls.secret_fields and name not in ("base_url", "auth_mode", "enabled")
    }
    if row is None:
        row = IntegrationConnection(organization_id=organization_id, kind=kind.value)
        session.add(row)
    row.base_url = connection.base_url
    row.auth_mode = connection.auth_mode
    row.enabled = connection.enabled
    row.options = options
    row.secrets = box.seal(secrets)
    await session.flush()
    return view_of(connection, updated_at=row.updated_at)


def _plain(connection: Connection) -> dict[str, Any]:
    return {
        name: value.get_secret_value() if isinstance(value, SecretStr) else value
        for name, value in connection
    }


def _plain_changes(changes: BaseModel) -> dict[str, Any]:
    return {
        name: value.get_secret_value() if isinstance(value, SecretStr) else value
        for name, value in changes.model_dump(exclude_unset=True).items()
    }


def _describe(exc: ValidationError) -> str:
    """Name the invalid fields without echoing their values (they may be secrets)."""
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        where = ".".join(str(p) for p in error["loc"]) or "settings"
        problems.append(f"{where}: {error['msg']}")
    return "Invalid integration settings: " + "; ".join(problems) + "."


__all__ = [
    "IntegrationDisabled",
    "IntegrationNotConfigured",
    "InvalidIntegrationSettings",
    "OracleFusionConnection",
    "YardiConnection",
    "describe_connection",
    "get_connection",
    "set_connection",
]

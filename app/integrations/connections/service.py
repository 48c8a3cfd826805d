"""Per-organisation integration connections: set (partially), read with secrets, describe.

Secrets are sealed with :class:`~app.integrations.connections.crypto.SecretBox` before they reach
the database and only opened for the integration runtime. Nothing here logs a value.
:func:`rotate_secrets` re-seals every organisation's secrets under the current key.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, SecretStr, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import session_scope
from app.core.errors import AppError, Conflict, NotFound
from app.core.settings import get_settings
from app.integrations.connections import repository
from app.integrations.connections.crypto import SecretBox, SecretsUnreadable, configured_box
from app.integrations.connections.models import IntegrationConnection
from app.integrations.connections.schemas import (
    CONNECTION_TYPES,
    Connection,
    ConnectionView,
    IntegrationKind,
    OracleFusionConnection,
    YardiConnection,
    view_of,
)

C = TypeVar("C", bound=Connection)

logger = logging.getLogger(__name__)


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


class StoredConnectionInvalid(Conflict):
    code = "integration_connection_invalid"
    detail = "The stored connection is incomplete or invalid; set it again."


def check_allowed_host(base_url: str) -> None:
    """Refuse a base URL whose host ``HTTP_ALLOWED_HOSTS`` does not list.

    Raises:
        InvalidIntegrationSettings: the host is not allowed.
    """
    host = urlsplit(base_url).hostname or ""
    if not get_settings().http.allows_host(host):
        raise InvalidIntegrationSettings(
            f"base_url: the host {host!r} is not in HTTP_ALLOWED_HOSTS"
        )


def _box(box: SecretBox | None) -> SecretBox:
    return box or configured_box(get_settings().security)


def _load(row: IntegrationConnection, box: SecretBox) -> Connection:
    """Return the stored connection with its secrets opened.

    Raises:
        SecretsUnreadable: no configured key opens them (logged with whose they are).
        StoredConnectionInvalid: what is stored no longer makes a valid connection (stored
            before a rule existed, for example an empty secret); a PUT with the missing
            fields repairs it.
    """
    cls = CONNECTION_TYPES[IntegrationKind(row.kind)]
    try:
        return cls.model_validate(_stored(row, box))
    except ValidationError as exc:
        logger.error(
            "the stored %s connection of organisation %s does not validate: %s",
            row.kind,
            row.organization_id,
            _describe(exc),
        )
        raise StoredConnectionInvalid(
            f"The stored {row.kind} connection is incomplete or invalid "
            f"({_describe(exc)}); set the missing fields again with PUT.",
            integration=row.kind,
        ) from None


def _stored(row: IntegrationConnection, box: SecretBox) -> dict[str, Any]:
    """Return the stored values of a connection, secrets opened, without validating them.

    Raises:
        SecretsUnreadable: no configured key opens them (logged with whose they are).
    """
    cls = CONNECTION_TYPES[IntegrationKind(row.kind)]
    try:
        secrets = box.open(row.secrets)
    except SecretsUnreadable:
        logger.error(
            "the %s secrets of organisation %s cannot be decrypted with AUTH_ENCRYPTION_KEY or "
            "any key of AUTH_ENCRYPTION_KEYS_PREVIOUS",
            row.kind,
            row.organization_id,
        )
        raise SecretsUnreadable(
            f"The stored {row.kind} secrets cannot be decrypted with any configured key; "
            "an operator must configure the key that sealed them.",
            integration=row.kind,
        ) from None
    stored = {**(row.options or {}), **secrets}
    return {
        **{name: value for name, value in stored.items() if name in cls.model_fields},
        "base_url": row.base_url,
        "auth_mode": row.auth_mode,
        "enabled": row.enabled,
    }


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
        SecretsUnreadable: no configured key opens the stored secrets.
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
    """Return the connection as admins see it: no secret, only whether each one is set.

    Raises:
        IntegrationNotConfigured: nothing is stored for this organisation and kind.
        SecretsUnreadable: no configured key opens the stored secrets.
    """
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
        SecretsUnreadable: no configured key opens the stored secrets (they are merged with
            the changes, so nothing is written).
    """
    box = _box(box)
    cls = CONNECTION_TYPES[kind]
    row = await repository.get(session, organization_id=organization_id, kind=kind.value)
    # What is stored is merged unvalidated: a change that supplies what it lacks repairs it.
    current: dict[str, Any] = _stored(row, box) if row is not None else {}
    merged = {**current, **_plain_changes(changes)}
    try:
        connection = cls.model_validate(merged)
    except ValidationError as exc:
        raise InvalidIntegrationSettings(_describe(exc)) from None
    check_allowed_host(connection.base_url)
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


async def remove_connection(
    session: AsyncSession, *, organization_id: uuid.UUID, kind: IntegrationKind
) -> None:
    """Forget the organisation's connection of this kind, secrets included.

    This is the way back when its secrets can no longer be decrypted (a lost key): remove it,
    then set it again from scratch.

    Raises:
        IntegrationNotConfigured: there is none.
    """
    row = await repository.get(session, organization_id=organization_id, kind=kind.value)
    if row is None:
        raise IntegrationNotConfigured()
    await session.delete(row)
    await session.flush()
    logger.info("removed the %s connection of organisation %s", kind.value, organization_id)


@dataclass
class SecretsRotation:
    """What :func:`rotate_secrets` did."""

    resealed: int = 0
    """Connections whose secrets it sealed again with the current key."""
    current: int = 0
    """Connections already sealed with the current key (left as they were)."""
    changed: int = 0
    """Connections changed by someone else between the read and the swap (left to that change,
    sealed with whatever key its process had)."""
    unreadable: list[repository.SealedSecrets] = field(default_factory=list)
    """Connections no configured key opens (left as they were)."""


async def rotate_secrets(*, batch_size: int = 100, box: SecretBox | None = None) -> SecretsRotation:
    """Seal every organisation's stored secrets again with the current key, batch by batch.

    Each batch is its own transaction, and each row is decided alone: a row that the current key
    already opens is skipped, a row that a previous key opens is re-sealed (``MultiFernet.rotate``)
    and swapped only if nobody changed it since it was read, and a row that no configured key
    opens is left exactly as it was and reported. No row is ever half-written, an interrupted run
    leaves every row readable, and running it again only finishes the work (idempotent).

    Args:
        batch_size: rows read, re-sealed and committed at a time.
        box: the keys (default: ``AUTH_ENCRYPTION_KEY`` and ``AUTH_ENCRYPTION_KEYS_PREVIOUS``).

    Returns:
        How many rows were re-sealed, already current or changed meanwhile, and which rows are
        unreadable.
    """
    box = _box(box)
    report = SecretsRotation()
    after: uuid.UUID | None = None
    while True:
        async with session_scope(join=False) as session:
            page = await repository.sealed_page(session, after=after, limit=batch_size)
            for row in page:
                if box.sealed_with_current_key(row.secrets):
                    report.current += 1
                    continue
                try:
                    resealed = box.reseal(row.secrets)
                except SecretsUnreadable:
                    report.unreadable.append(row)
                    continue
                swapped = await repository.replace_secrets(
                    session, connection_id=row.id, sealed=row.secrets, resealed=resealed
                )
                if swapped:
                    report.resealed += 1
                else:
                    report.changed += 1
        if len(page) < batch_size:
            break
        after = page[-1].id
    logger.info(
        "integration secrets re-sealed: %d, already current: %d, changed meanwhile: %d, "
        "unreadable: %d",
        report.resealed,
        report.current,
        report.changed,
        len(report.unreadable),
    )
    return report


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
    "SecretsRotation",
    "SecretsUnreadable",
    "StoredConnectionInvalid",
    "YardiConnection",
    "describe_connection",
    "get_connection",
    "rotate_secrets",
    "set_connection",
]

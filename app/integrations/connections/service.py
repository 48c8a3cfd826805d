"""Per-organisation integration connections: set (partially), read with secrets, describe.

Secrets are sealed with :class:`~app.integrations.connections.crypto.SecretBox` before they reach
the database and only opened for the integration runtime. Nothing here logs a value.
:func:`rotate_secrets` re-seals every organisation's secrets under the current key.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, SecretStr, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import after_commit, read_session, session_scope
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
    _, connection = await _read(session, organization_id=organization_id, kind=kind, box=box)
    return _enabled(connection, kind) if require_enabled else connection


async def _read(
    session: AsyncSession,
    *,
    organization_id: uuid.UUID,
    kind: type[C],
    box: SecretBox | None = None,
) -> tuple[tuple[uuid.UUID, datetime], C]:
    """The stored connection, opened, and its version (``repository.version``)."""
    row = await repository.get(session, organization_id=organization_id, kind=kind.kind.value)
    if row is None:
        raise _not_configured(kind)
    connection = _load(row, _box(box))
    assert isinstance(connection, kind)
    return (row.id, row.updated_at), connection


def _not_configured(kind: type[Connection]) -> IntegrationNotConfigured:
    return IntegrationNotConfigured(f"{kind.kind.value} is not configured for this organisation.")


def _enabled(connection: C, kind: type[C]) -> C:
    if not connection.enabled:
        raise IntegrationDisabled(f"{kind.kind.value} is disabled for this organisation.")
    return connection


class ConnectionCache:
    """The organisations' opened connections, each reused while its row is unchanged.

    The clients ask for a connection on every call; opening one costs reading the whole row,
    decrypting its secrets and validating it. The cache keeps each opened connection with its
    version (the row's id and ``updated_at``, which every change through
    :func:`set_connection` moves) and, once ``HTTP_CONNECTION_RECHECK_SECONDS`` have passed
    since it last did, reads only the version again (two plain columns): a change made in
    another process of the cluster is seen within that time, a removed connection is not
    configured any more. A change made through this process drops its entry when it commits.
    Re-sealing secrets under a new key keeps ``updated_at`` (the values are the same), so it
    keeps the entry too.

    Args:
        max_entries: how many organisation-and-kind entries are kept (the least recently used
            go first).
        clock: monotonic seconds (tests).
    """

    def __init__(
        self, *, max_entries: int = 1024, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_entries = max_entries
        self.clock = clock
        self._entries: OrderedDict[tuple[uuid.UUID, str], _Opened] = OrderedDict()

    async def get(
        self,
        session: AsyncSession | None,
        *,
        organization_id: uuid.UUID,
        kind: type[C],
    ) -> C:
        """Return the enabled connection as :func:`get_connection` does, reusing an opened one
        while its version is the stored one.

        Args:
            session: the session to read with; None opens a read session only when a read is
                due (an entry past its recheck time, or none), so a fresh entry costs nothing.
            organization_id: whose connection.
            kind: which one (``OracleFusionConnection``, ``YardiConnection``).

        Raises:
            IntegrationNotConfigured: nothing is stored for this organisation and kind.
            IntegrationDisabled: it is stored but switched off.
            SecretsUnreadable: no configured key opens the stored secrets.
        """
        key = (organization_id, kind.kind.value)
        opened = self._entries.get(key)
        if (
            opened is not None
            and isinstance(opened.connection, kind)
            and self.clock() - opened.checked_at < get_settings().http.connection_recheck_seconds
        ):
            self._entries.move_to_end(key)
            return _enabled(opened.connection, kind)
        if session is None:
            async with read_session() as own:
                return await self._read(own, organization_id, kind)
        return await self._read(session, organization_id, kind)

    async def _read(self, session: AsyncSession, organization_id: uuid.UUID, kind: type[C]) -> C:
        key = (organization_id, kind.kind.value)
        now = self.clock()
        opened = self._entries.get(key)
        if opened is not None and isinstance(opened.connection, kind):
            version = await repository.version(
                session, organization_id=organization_id, kind=key[1]
            )
            if version is None:
                self.forget(organization_id, kind.kind)
                raise _not_configured(kind)
            if version == opened.version:
                opened.checked_at = now
                self._entries.move_to_end(key)
                return _enabled(opened.connection, kind)
        version, connection = await _read(session, organization_id=organization_id, kind=kind)
        self._entries[key] = _Opened(version, connection, checked_at=now)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return _enabled(connection, kind)

    def forget(self, organization_id: uuid.UUID, kind: IntegrationKind) -> None:
        """Drop the organisation's opened connection of this kind (it changed)."""
        self._entries.pop((organization_id, kind.value), None)

    def clear(self) -> None:
        """Forget every opened connection."""
        self._entries.clear()


@dataclass(slots=True)
class _Opened:
    version: tuple[uuid.UUID, datetime]
    connection: Connection
    checked_at: float


CONNECTIONS = ConnectionCache()
"""The process's opened connections (the integration runtime reads through it)."""


def _forget_when_committed(
    session: AsyncSession, organization_id: uuid.UUID, kind: IntegrationKind
) -> None:
    # Now as well as at the commit: a call in between would open the old row again.
    CONNECTIONS.forget(organization_id, kind)
    after_commit(session, lambda: CONNECTIONS.forget(organization_id, kind))


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
    _forget_when_committed(session, organization_id, kind)
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
    _forget_when_committed(session, organization_id, kind)
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
    "CONNECTIONS",
    "ConnectionCache",
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

"""Connection settings per integration: what is stored, what may be changed, what is shown.

Each kind declares its secret fields. A change is partial: fields left out keep their value, so
an admin can move the base URL without re-entering the password. Views replace every secret by
``<name>_set``: secrets are write-only.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from app.integrations.oracle_fusion.auth import load_rsa_private_key


class IntegrationKind(StrEnum):
    ORACLE_FUSION = "oracle_fusion"
    YARDI = "yardi"


def _check_url(value: str) -> str:
    value = value.strip().rstrip("/")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an http(s) URL")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError("must not carry a query, a fragment or credentials")
    return value


class Connection(BaseModel):
    """The stored settings of one kind, secrets included (server side only)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: ClassVar[IntegrationKind]
    secret_fields: ClassVar[tuple[str, ...]]
    auth_mode: str

    base_url: str
    enabled: bool = True

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _check_url(value)

    def is_set(self, name: str) -> bool:
        value = getattr(self, name)
        return isinstance(value, SecretStr) and bool(value.get_secret_value())


class OracleFusionConnection(Connection):
    """Oracle Fusion: basic with an integration account, or per-user bearer JWTs."""

    kind = IntegrationKind.ORACLE_FUSION
    secret_fields = ("password", "jwt_private_key")

    auth_mode: Literal["basic", "jwt"] = "basic"
    username: str | None = Field(default=None, max_length=200)
    """The integration account (a worklist administrator, for ``assignment=ALL``)."""
    password: SecretStr | None = None
    jwt_private_key: SecretStr | None = None
    """PEM RSA key (2048 bits or more) whose certificate the pod trusts."""
    jwt_issuer: str = Field(default="workflow-hub", max_length=200)
    jwt_key_id: str | None = Field(default=None, max_length=200)
    """Sent as the ``x5t`` header when the pod needs the certificate's thumbprint."""
    framework_version: int = Field(default=4, ge=1, le=9)
    """The ``REST-Framework-Version`` of HCM and procurement calls."""

    @model_validator(mode="after")
    def _check_auth(self) -> OracleFusionConnection:
        if self.auth_mode == "basic" and not (self.username and self.is_set("password")):
            raise ValueError("basic auth needs a username and a password")
        if self.auth_mode == "jwt":
            if not self.is_set("jwt_private_key"):
                raise ValueError("jwt auth needs a private key")
            assert self.jwt_private_key is not None
            load_rsa_private_key(self.jwt_private_key.get_secret_value())
        return self


class YardiConnection(Connection):
    """Yardi: the interface credentials that go into every SOAP body."""

    kind = IntegrationKind.YARDI
    secret_fields = ("password", "interface_license")

    auth_mode: Literal["body"] = "body"
    username: str = Field(min_length=1, max_length=200)
    password: SecretStr
    server_name: str = Field(min_length=1, max_length=200)
    database: str = Field(min_length=1, max_length=200)
    platform: str = Field(default="SQL Server", max_length=50)
    interface_entity: str = Field(min_length=1, max_length=200)
    interface_license: SecretStr
    property_id: str | None = Field(default=None, max_length=100)


CONNECTION_TYPES: dict[IntegrationKind, type[Connection]] = {
    IntegrationKind.ORACLE_FUSION: OracleFusionConnection,
    IntegrationKind.YARDI: YardiConnection,
}


class OracleFusionChanges(BaseModel):
    """A partial change of an Oracle Fusion connection (the PUT body)."""

    model_config = ConfigDict(extra="forbid")

    base_url: str | None = None
    enabled: bool | None = None
    auth_mode: Literal["basic", "jwt"] | None = None
    username: str | None = None
    password: SecretStr | None = None
    jwt_private_key: SecretStr | None = None
    jwt_issuer: str | None = None
    jwt_key_id: str | None = None
    framework_version: int | None = None


class YardiChanges(BaseModel):
    """A partial change of a Yardi connection (the PUT body)."""

    model_config = ConfigDict(extra="forbid")

    base_url: str | None = None
    enabled: bool | None = None
    username: str | None = None
    password: SecretStr | None = None
    server_name: str | None = None
    database: str | None = None
    platform: str | None = None
    interface_entity: str | None = None
    interface_license: SecretStr | None = None
    property_id: str | None = None


class ConnectionView(BaseModel):
    """A connection as the API and the CLI show it: every secret replaced by ``<name>_set``."""

    kind: IntegrationKind
    updated_at: datetime
    settings: dict[str, Any]


def view_of(connection: Connection, *, updated_at: datetime) -> ConnectionView:
    """Return the write-only view of ``connection``."""
    shown: dict[str, Any] = {}
    for name in type(connection).model_fields:
        if name in connection.secret_fields:
            shown[f"{name}_set"] = connection.is_set(name)
        else:
            shown[name] = getattr(connection, name)
    return ConnectionView(kind=connection.kind, updated_at=updated_at, settings=shown)

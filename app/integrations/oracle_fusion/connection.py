"""The Oracle Fusion connection of one organisation: what is stored, and what a change may set.

A change is partial: fields left out keep their value, so an admin can move the base URL without
re-entering the password.
"""

from __future__ import annotations

import hashlib
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from app.integrations.connection import Connection, IntegrationKind, secret_change
from app.integrations.oracle_fusion.auth import load_rsa_private_key


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
            _check_private_key(self.jwt_private_key.get_secret_value())
        return self


_CHECKED_KEYS: set[str] = set()
"""Digests of the private keys that loaded: a connection is read on every client built, and
loading an RSA key takes a tenth of a second."""


def _check_private_key(pem: str) -> None:
    digest = hashlib.sha256(pem.encode()).hexdigest()
    if digest in _CHECKED_KEYS:
        return
    load_rsa_private_key(pem)
    if len(_CHECKED_KEYS) >= 1000:
        _CHECKED_KEYS.clear()
    _CHECKED_KEYS.add(digest)


class OracleFusionChanges(BaseModel):
    """A partial change of an Oracle Fusion connection (the PUT body)."""

    model_config = ConfigDict(extra="forbid")

    base_url: str | None = None
    enabled: bool | None = None
    auth_mode: Literal["basic", "jwt"] | None = None
    username: str | None = None
    password: SecretStr | None = secret_change()
    jwt_private_key: SecretStr | None = secret_change()
    jwt_issuer: str | None = None
    jwt_key_id: str | None = None
    framework_version: int | None = None

"""The Yardi connection of one organisation: what is stored, and what a change may set.

A change is partial: fields left out keep their value, so an admin can move the base URL without
re-entering the password.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from app.integrations.connection import Connection, IntegrationKind, secret_change


class YardiConnection(Connection):
    """Yardi: the interface credentials that go into every SOAP body."""

    kind = IntegrationKind.YARDI
    secret_fields = ("password", "interface_license")

    auth_mode: Literal["body"] = "body"
    username: str = Field(min_length=1, max_length=200)
    password: SecretStr = Field(min_length=1)
    server_name: str = Field(min_length=1, max_length=200)
    database: str = Field(min_length=1, max_length=200)
    platform: str = Field(default="SQL Server", max_length=50)
    interface_entity: str = Field(min_length=1, max_length=200)
    interface_license: SecretStr = Field(min_length=1)
    property_id: str | None = Field(default=None, max_length=100)


class YardiChanges(BaseModel):
    """A partial change of a Yardi connection (the PUT body)."""

    model_config = ConfigDict(extra="forbid")

    base_url: str | None = None
    enabled: bool | None = None
    username: str | None = None
    password: SecretStr | None = secret_change()
    server_name: str | None = None
    database: str | None = None
    platform: str | None = None
    interface_entity: str | None = None
    interface_license: SecretStr | None = secret_change()
    property_id: str | None = None

"""What every integration's connection settings share: the kind, the base URL, write-only secrets.

Each vendor package declares its own connection (``app/integrations/<vendor>/connection.py``)
next to its client; ``app/integrations/connections`` stores them per organisation.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator


class IntegrationKind(StrEnum):
    ORACLE_FUSION = "oracle_fusion"
    YARDI = "yardi"


def check_url(value: str) -> str:
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
        return check_url(value)

    def is_set(self, name: str) -> bool:
        value = getattr(self, name)
        return isinstance(value, SecretStr) and bool(value.get_secret_value())


def secret_change() -> Any:
    """A secret of a change: leave it out to keep the stored one; an empty one is refused.

    An empty secret would be stored as "not set" and leave a connection that no longer
    validates, so every secret of both integrations is at least one character (422 otherwise).
    """
    return Field(default=None, min_length=1)

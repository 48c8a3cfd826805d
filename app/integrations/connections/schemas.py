"""Connection settings per integration: the kinds, and what the API and the CLI show.

Each kind declares its secret fields (``app/integrations/<vendor>/connection.py``). Views replace
every secret by ``<name>_set``: secrets are write-only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from app.integrations.connection import Connection, IntegrationKind
from app.integrations.oracle_fusion.connection import OracleFusionChanges, OracleFusionConnection
from app.integrations.yardi.connection import YardiChanges, YardiConnection

__all__ = [
    "CONNECTION_TYPES",
    "Connection",
    "ConnectionView",
    "IntegrationKind",
    "OracleFusionChanges",
    "OracleFusionConnection",
    "YardiChanges",
    "YardiConnection",
    "view_of",
]

CONNECTION_TYPES: dict[IntegrationKind, type[Connection]] = {
    IntegrationKind.ORACLE_FUSION: OracleFusionConnection,
    IntegrationKind.YARDI: YardiConnection,
}


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

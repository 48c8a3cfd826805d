"""The table of per-organisation integration connections (Oracle Fusion, Yardi)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, Timestamps, UUIDPrimaryKey


class IntegrationConnection(UUIDPrimaryKey, Timestamps, Base):
    """How one organisation reaches one external system.

    Non-secret settings live in ``options``; passwords, private keys and licenses live in
    ``secrets``, a Fernet token of a JSON object, and are never returned by the API or logged.
    """

    __tablename__ = "integration_connections"

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(String(32))
    base_url: Mapped[str] = mapped_column(String(500))
    auth_mode: Mapped[str] = mapped_column(String(16))
    enabled: Mapped[bool] = mapped_column(default=True)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    secrets: Mapped[str] = mapped_column(Text)

    __table_args__ = (UniqueConstraint("organization_id", "kind"),)

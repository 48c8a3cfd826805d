"""Tables of the auth module: credentials read model, sessions, refresh tokens, login failures."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, UUIDPrimaryKey, utcnow


class Account(Base):
    """What auth knows of a user, fed by the user module's lifecycle events."""

    __tablename__ = "auth_accounts"
    __table_args__ = (UniqueConstraint("organization_id", "email"),)

    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"))
    email: Mapped[str] = mapped_column(String(320), index=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20))
    user_type: Mapped[str] = mapped_column(String(20))
    is_active: Mapped[bool] = mapped_column(default=True)
    is_deleted: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    @property
    def can_log_in(self) -> bool:
        return self.is_active and not self.is_deleted and self.password_hash is not None


class AuthSession(UUIDPrimaryKey, Base):
    """One login: a family of rotating refresh tokens. Its id is the access token's ``sid``.

    It carries the user's current role and type, so checking an access token is one
    primary-key lookup that also sees a demotion at once.
    """

    __tablename__ = "auth_sessions"

    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"))
    user_id: Mapped[uuid.UUID] = mapped_column(index=True)
    role: Mapped[str] = mapped_column(String(20))
    user_type: Mapped[str] = mapped_column(String(20))
    device_token: Mapped[str | None] = mapped_column(String(4096))
    device_platform: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    revoked_reason: Mapped[str | None] = mapped_column(String(40))


class RefreshToken(UUIDPrimaryKey, Base):
    """One refresh token of a session; it works once (``used_at`` marks the rotation)."""

    __tablename__ = "auth_refresh_tokens"

    session_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("auth_sessions.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    """SHA-256 of the token; the token itself is never stored."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class LoginFailure(UUIDPrimaryKey, Base):
    """One failed login, counted per email and per client address (both stored hashed).

    A login attempt is recorded before its password is checked (so concurrent guesses count)
    and taken back when it succeeds or is throttled.
    """

    __tablename__ = "auth_login_failures"
    __table_args__ = (Index("ix_auth_login_failures_lookup", "scope", "key_hash", "failed_at"),)

    scope: Mapped[str] = mapped_column(String(10))
    """``email`` or ``address``."""
    key_hash: Mapped[str] = mapped_column(String(64))
    failed_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

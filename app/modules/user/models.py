"""Tables of the user module: users, their line managers and device sessions."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.db import Base, Timestamps, UUIDPrimaryKey, utcnow


class User(UUIDPrimaryKey, Timestamps, Base):
    """A person of one organisation. EMPLOYEE users get their profile from Oracle Fusion HCM."""

    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("organization_id", "email"),)

    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"))
    email: Mapped[str] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(20))
    user_type: Mapped[str] = mapped_column(String(20), index=True)
    first_name: Mapped[str | None] = mapped_column(String(100))
    last_name: Mapped[str | None] = mapped_column(String(100))
    display_name: Mapped[str | None] = mapped_column(String(200))
    oracle_username: Mapped[str | None] = mapped_column(String(200))
    person_number: Mapped[str | None] = mapped_column(String(50))
    work_email: Mapped[str | None] = mapped_column(String(320))
    job: Mapped[str | None] = mapped_column(String(200))
    department: Mapped[str | None] = mapped_column(String(200))
    business_unit: Mapped[str | None] = mapped_column(String(200))
    profile_synced_at: Mapped[datetime | None]
    is_active: Mapped[bool] = mapped_column(default=True)
    is_deleted: Mapped[bool] = mapped_column(default=False)
    deleted_at: Mapped[datetime | None]

    line_managers: Mapped[list[LineManager]] = relationship(
        back_populates="user",
        order_by="LineManager.position",
        cascade="all, delete-orphan",
        lazy="raise",
    )


class LineManager(UUIDPrimaryKey, Base):
    """A line manager of a user, as the last profile sync reported it."""

    __tablename__ = "user_line_managers"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(default=0)
    person_number: Mapped[str | None] = mapped_column(String(50))
    display_name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))

    user: Mapped[User] = relationship(back_populates="line_managers", lazy="raise")


class DeviceSession(UUIDPrimaryKey, Base):
    """A login as the user module sees it: which device, since when, until when."""

    __tablename__ = "user_device_sessions"

    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"))
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    session_id: Mapped[uuid.UUID] = mapped_column(unique=True)
    """The auth session (the access token's ``sid``)."""
    device_token: Mapped[str | None] = mapped_column(String(4096))
    platform: Mapped[str | None] = mapped_column(String(20))
    device_name: Mapped[str | None] = mapped_column(String(200))
    logged_in_at: Mapped[datetime] = mapped_column(default=utcnow)
    logged_out_at: Mapped[datetime | None]

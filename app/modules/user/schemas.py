"""Request and response bodies of the user module."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, model_validator

from app.contracts.user import Role, UserType
from app.core.schemas import RequestBody


def _optional(max_length: int) -> Any:
    return Field(default=None, min_length=1, max_length=max_length)


class UserCreate(RequestBody):
    email: EmailStr = Field(max_length=320)
    password: str = Field(min_length=8, max_length=1024)
    role: Role = "employee"
    user_type: UserType = "EMPLOYEE"
    first_name: str | None = _optional(100)
    last_name: str | None = _optional(100)
    oracle_username: str | None = _optional(200)
    person_number: str | None = _optional(50)


NOT_NULL = ("email", "password", "role", "user_type", "is_active")


class UserUpdate(RequestBody):
    """Only the fields sent change; ``null`` clears an optional field."""

    email: EmailStr | None = Field(default=None, max_length=320)
    password: str | None = Field(default=None, min_length=8, max_length=1024)
    role: Role | None = None
    user_type: UserType | None = None
    is_active: bool | None = None
    first_name: str | None = _optional(100)
    last_name: str | None = _optional(100)
    oracle_username: str | None = _optional(200)
    person_number: str | None = _optional(50)

    @model_validator(mode="after")
    def _not_null(self) -> UserUpdate:
        nulls = [f for f in NOT_NULL if f in self.model_fields_set and getattr(self, f) is None]
        if nulls:
            raise ValueError(f"these fields cannot be null: {', '.join(nulls)}")
        return self

    def changes(self) -> dict[str, Any]:
        """The fields the client sent, with their values."""
        return {name: getattr(self, name) for name in self.model_fields_set}


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    organization_id: uuid.UUID
    email: str
    role: Role
    user_type: UserType
    first_name: str | None
    last_name: str | None
    display_name: str | None
    oracle_username: str | None
    person_number: str | None
    is_active: bool
    is_deleted: bool
    created_at: datetime
    updated_at: datetime


class LineManagerRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    person_number: str | None
    display_name: str | None
    email: str | None


class OrganizationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str


class MeRead(UserRead):
    """The caller, with the profile the Oracle Fusion sync fills (empty until it runs)."""

    work_email: str | None
    job: str | None
    department: str | None
    business_unit: str | None
    profile_synced_at: datetime | None
    line_managers: list[LineManagerRead]
    organization: OrganizationRead


class ResyncAccepted(BaseModel):
    status: Literal["accepted"] = "accepted"
    scope: Literal["user", "organization"]
    user_id: uuid.UUID | None = None

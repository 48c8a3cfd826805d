"""auth_user_accounts: Users, sessions, devices and login throttling (auth and user modules).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 00:10:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.core.db

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "auth_login_failures",
        sa.Column("scope", sa.String(length=10), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("failed_at", app.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auth_login_failures")),
    )
    op.create_index(
        op.f("ix_auth_login_failures_failed_at"), "auth_login_failures", ["failed_at"], unique=False
    )
    op.create_index(
        "ix_auth_login_failures_lookup",
        "auth_login_failures",
        ["scope", "key_hash", "failed_at"],
        unique=False,
    )
    op.create_table(
        "auth_accounts",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("user_type", sa.String(length=20), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("is_deleted", sa.Boolean(), nullable=False),
        sa.Column("updated_at", app.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_auth_accounts_organization_id_organizations"),
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_auth_accounts")),
        sa.UniqueConstraint(
            "organization_id", "email", name=op.f("uq_auth_accounts_organization_id_email")
        ),
    )
    op.create_index(op.f("ix_auth_accounts_email"), "auth_accounts", ["email"], unique=False)
    op.create_table(
        "auth_sessions",
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("user_type", sa.String(length=20), nullable=False),
        sa.Column("device_token", sa.String(length=4096), nullable=True),
        sa.Column("device_platform", sa.String(length=20), nullable=True),
        sa.Column("created_at", app.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", app.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", app.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_reason", sa.String(length=40), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_auth_sessions_organization_id_organizations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auth_sessions")),
    )
    op.create_index(op.f("ix_auth_sessions_user_id"), "auth_sessions", ["user_id"], unique=False)
    op.create_table(
        "users",
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("user_type", sa.String(length=20), nullable=False),
        sa.Column("first_name", sa.String(length=100), nullable=True),
        sa.Column("last_name", sa.String(length=100), nullable=True),
        sa.Column("display_name", sa.String(length=200), nullable=True),
        sa.Column("oracle_username", sa.String(length=200), nullable=True),
        sa.Column("person_number", sa.String(length=50), nullable=True),
        sa.Column("work_email", sa.String(length=320), nullable=True),
        sa.Column("job", sa.String(length=200), nullable=True),
        sa.Column("department", sa.String(length=200), nullable=True),
        sa.Column("business_unit", sa.String(length=200), nullable=True),
        sa.Column("profile_synced_at", app.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("is_deleted", sa.Boolean(), nullable=False),
        sa.Column("deleted_at", app.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", app.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_users_organization_id_organizations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint(
            "organization_id", "email", name=op.f("uq_users_organization_id_email")
        ),
    )
    op.create_index(op.f("ix_users_user_type"), "users", ["user_type"], unique=False)
    op.create_table(
        "auth_refresh_tokens",
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", app.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", app.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", app.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["auth_sessions.id"],
            name=op.f("fk_auth_refresh_tokens_session_id_auth_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auth_refresh_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_auth_refresh_tokens_token_hash")),
    )
    op.create_index(
        op.f("ix_auth_refresh_tokens_session_id"),
        "auth_refresh_tokens",
        ["session_id"],
        unique=False,
    )
    op.create_table(
        "user_device_sessions",
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("device_token", sa.String(length=4096), nullable=True),
        sa.Column("platform", sa.String(length=20), nullable=True),
        sa.Column("device_name", sa.String(length=200), nullable=True),
        sa.Column("logged_in_at", app.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("logged_out_at", app.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_user_device_sessions_organization_id_organizations"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_user_device_sessions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_device_sessions")),
        sa.UniqueConstraint("session_id", name=op.f("uq_user_device_sessions_session_id")),
    )
    op.create_index(
        op.f("ix_user_device_sessions_user_id"), "user_device_sessions", ["user_id"], unique=False
    )
    op.create_table(
        "user_line_managers",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("person_number", sa.String(length=50), nullable=True),
        sa.Column("display_name", sa.String(length=200), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_user_line_managers_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_line_managers")),
    )
    op.create_index(
        op.f("ix_user_line_managers_user_id"), "user_line_managers", ["user_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_user_line_managers_user_id"), table_name="user_line_managers")
    op.drop_table("user_line_managers")
    op.drop_index(op.f("ix_user_device_sessions_user_id"), table_name="user_device_sessions")
    op.drop_table("user_device_sessions")
    op.drop_index(op.f("ix_auth_refresh_tokens_session_id"), table_name="auth_refresh_tokens")
    op.drop_table("auth_refresh_tokens")
    op.drop_index(op.f("ix_users_user_type"), table_name="users")
    op.drop_table("users")
    op.drop_index(op.f("ix_auth_sessions_user_id"), table_name="auth_sessions")
    op.drop_table("auth_sessions")
    op.drop_index(op.f("ix_auth_accounts_email"), table_name="auth_accounts")
    op.drop_table("auth_accounts")
    op.drop_index("ix_auth_login_failures_lookup", table_name="auth_login_failures")
    op.drop_index(op.f("ix_auth_login_failures_failed_at"), table_name="auth_login_failures")
    op.drop_table("auth_login_failures")

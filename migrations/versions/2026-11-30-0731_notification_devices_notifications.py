"""notification_devices_notifications: push devices and their topics, notifications (one per
user, module and task), pushes (at most one open per user) and preferences.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 07:31:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.core.db

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "notification_devices",
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("token", sa.String(length=4096), nullable=False),
        sa.Column("token_digest", sa.String(length=64), nullable=False),
        sa.Column("platform", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("session_id", sa.Uuid(), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_at", app.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", app.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("deactivated_at", app.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("deactivated_reason", sa.String(length=40), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_notification_devices_organization_id_organizations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_devices")),
        sa.UniqueConstraint("token_digest", name=op.f("uq_notification_devices_token_digest")),
    )
    with op.batch_alter_table("notification_devices", schema=None) as batch_op:
        batch_op.create_index(
            "ix_notification_devices_user_active", ["user_id", "is_active"], unique=False
        )

    op.create_table(
        "notification_preferences",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("push_procurement", sa.Boolean(), nullable=False),
        sa.Column("push_hr", sa.Boolean(), nullable=False),
        sa.Column("push_leasing", sa.Boolean(), nullable=False),
        sa.Column("quiet_start", sa.String(length=5), nullable=True),
        sa.Column("quiet_end", sa.String(length=5), nullable=True),
        sa.Column("time_zone", sa.String(length=64), nullable=True),
        sa.Column("updated_at", app.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_notification_preferences_organization_id_organizations"),
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_notification_preferences")),
    )
    op.create_table(
        "notification_pushes",
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("due_at", app.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", app.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", app.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("notifications", sa.Integer(), nullable=False),
        sa.Column("devices", sa.Integer(), nullable=False),
        sa.Column("delivered", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_notification_pushes_organization_id_organizations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_pushes")),
    )
    with op.batch_alter_table("notification_pushes", schema=None) as batch_op:
        batch_op.create_index(
            "uq_notification_pushes_open",
            ["user_id"],
            unique=True,
            sqlite_where=sa.text("status = 'scheduled'"),
            postgresql_where=sa.text("status = 'scheduled'"),
        )

    op.create_table(
        "notification_device_topics",
        sa.Column("device_id", sa.Uuid(), nullable=False),
        sa.Column("topic", sa.String(length=900), nullable=False),
        sa.Column("subscribed_at", app.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["notification_devices.id"],
            name=op.f("fk_notification_device_topics_device_id_notification_devices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("device_id", "topic", name=op.f("pk_notification_device_topics")),
    )
    op.create_table(
        "notifications",
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("module", sa.String(length=20), nullable=False),
        sa.Column("task_id", sa.String(length=200), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("body", sa.String(length=1000), nullable=True),
        sa.Column("sync_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", app.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("read_at", app.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", app.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("push_status", sa.String(length=20), nullable=False),
        sa.Column("push_id", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_notifications_organization_id_organizations"),
        ),
        sa.ForeignKeyConstraint(
            ["push_id"],
            ["notification_pushes.id"],
            name=op.f("fk_notifications_push_id_notification_pushes"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        sa.UniqueConstraint(
            "user_id", "module", "task_id", name=op.f("uq_notifications_user_id_module_task_id")
        ),
    )
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notifications_push_id"), ["push_id"], unique=False)
        batch_op.create_index(
            "ix_notifications_unread",
            ["user_id"],
            unique=False,
            sqlite_where=sa.text("read_at IS NULL AND resolved_at IS NULL"),
            postgresql_where=sa.text("read_at IS NULL AND resolved_at IS NULL"),
        )
        batch_op.create_index(
            "ix_notifications_user_created", ["user_id", "created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index("ix_notifications_user_created")
        batch_op.drop_index(
            "ix_notifications_unread",
            sqlite_where=sa.text("read_at IS NULL AND resolved_at IS NULL"),
            postgresql_where=sa.text("read_at IS NULL AND resolved_at IS NULL"),
        )
        batch_op.drop_index(batch_op.f("ix_notifications_push_id"))

    op.drop_table("notifications")
    op.drop_table("notification_device_topics")
    with op.batch_alter_table("notification_pushes", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_notification_pushes_open",
            sqlite_where=sa.text("status = 'scheduled'"),
            postgresql_where=sa.text("status = 'scheduled'"),
        )

    op.drop_table("notification_pushes")
    op.drop_table("notification_preferences")
    with op.batch_alter_table("notification_devices", schema=None) as batch_op:
        batch_op.drop_index("ix_notification_devices_user_active")

    op.drop_table("notification_devices")

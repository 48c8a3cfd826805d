"""notification_task_closures: a task closed before its notification was stored, so the late
receive stores it resolved instead of unread.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 11:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.core.db

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "notification_task_closures",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("module", sa.String(length=20), nullable=False),
        sa.Column("task_id", sa.String(length=200), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("closed_at", app.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_notification_task_closures_organization_id_organizations"),
        ),
        sa.PrimaryKeyConstraint(
            "user_id", "module", "task_id", name=op.f("pk_notification_task_closures")
        ),
    )


def downgrade() -> None:
    op.drop_table("notification_task_closures")

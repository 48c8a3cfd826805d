"""inbox_tasks: The procurement, hr and leasing inboxes: users, tasks, approvals, idempotency keys.

The three modules own tables of the same shape (``app/core/inbox/models.py``), one set each.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 08:30:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import app.core.db

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MODULES = ("procurement", "hr", "leasing")


def _when(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, app.core.db.UTCDateTime(timezone=True), nullable=nullable)


def _organization(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["organization_id"],
        ["organizations.id"],
        name=op.f(f"fk_{table}_organization_id_organizations"),
        ondelete="CASCADE",
    )


def _create(m: str) -> None:
    table = f"{m}_approvals"
    op.create_table(
        table,
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("task_id", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("error_code", sa.String(length=100), nullable=True),
        sa.Column("title", sa.String(length=500), nullable=True),
        _when("acted_at", nullable=False),
        _when("recorded_at", nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        _organization(table),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
    )
    with op.batch_alter_table(table, schema=None) as batch_op:
        batch_op.create_index(f"ix_{table}_org_time", ["organization_id", "acted_at"])
        batch_op.create_index(f"ix_{table}_user_time", ["organization_id", "user_id", "acted_at"])

    table = f"{m}_idempotency_keys"
    op.create_table(
        table,
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column(
            "response",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        _when("created_at", nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        _organization(table),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
        sa.UniqueConstraint(
            "organization_id",
            "user_id",
            "key",
            name=op.f(f"uq_{table}_organization_id_user_id_key"),
        ),
    )
    with op.batch_alter_table(table, schema=None) as batch_op:
        batch_op.create_index(batch_op.f(f"ix_{table}_created_at"), ["created_at"])

    table = f"{m}_inboxes"
    op.create_table(
        table,
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("oracle_username", sa.String(length=200), nullable=True),
        sa.Column("person_number", sa.String(length=50), nullable=True),
        sa.Column("user_type", sa.String(length=20), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        _when("synced_at"),
        _when("sync_attempted_at"),
        sa.Column("sync_error", sa.String(length=100), nullable=True),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        _organization(table),
        sa.PrimaryKeyConstraint("user_id", name=op.f(f"pk_{table}")),
    )

    table = f"{m}_tasks"
    op.create_table(
        table,
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("task_id", sa.String(length=200), nullable=False),
        sa.Column("source_ref", sa.String(length=200), nullable=True),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("summary", sa.String(length=1000), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("close_reason", sa.String(length=30), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=True),
        _when("assigned_at"),
        _when("due_at"),
        _when("source_updated_at"),
        _when("sort_at", nullable=False),
        _when("synced_at", nullable=False),
        _when("closed_at"),
        _when("claimed_until"),
        _when("created_at", nullable=False),
        _when("updated_at", nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        _organization(table),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
        sa.UniqueConstraint(
            "organization_id",
            "user_id",
            "task_id",
            name=op.f(f"uq_{table}_organization_id_user_id_task_id"),
        ),
    )
    with op.batch_alter_table(table, schema=None) as batch_op:
        batch_op.create_index(
            f"ix_{table}_inbox", ["organization_id", "user_id", "status", "sort_at"]
        )


def upgrade() -> None:
    for m in MODULES:
        _create(m)


def downgrade() -> None:
    for m in reversed(MODULES):
        for suffix in ("tasks", "inboxes", "idempotency_keys", "approvals"):
            op.drop_table(f"{m}_{suffix}")

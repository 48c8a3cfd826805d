"""events_outbox: The durable outbox: events, deliveries and their attempts.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 00:10:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import app.core.db

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "outbox_events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=True),
        sa.Column("correlation_id", sa.String(length=200), nullable=False),
        sa.Column("causation_id", sa.Uuid(), nullable=True),
        sa.Column("occurred_at", app.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("payload", JSON_TYPE, nullable=False),
        sa.Column("ordering_key", sa.String(length=200), nullable=True),
        sa.Column("dedupe_key", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_events")),
    )
    op.create_index(
        "uq_outbox_events_name_dedupe_key",
        "outbox_events",
        ["name", "dedupe_key"],
        unique=True,
        postgresql_where=sa.text("dedupe_key IS NOT NULL"),
        sqlite_where=sa.text("dedupe_key IS NOT NULL"),
    )
    op.create_table(
        "outbox_deliveries",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("listener_id", sa.String(length=200), nullable=False),
        sa.Column("event_name", sa.String(length=200), nullable=False),
        sa.Column("ordering_key", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("available_at", app.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("lease_until", app.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("lease_token", sa.Uuid(), nullable=True),
        sa.Column("worker", sa.String(length=200), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("errors", JSON_TYPE, nullable=False),
        sa.Column("completed_at", app.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", app.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'running', 'done', 'dead', 'discarded')",
            name=op.f("ck_outbox_deliveries_status"),
        ),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["outbox_events.id"],
            name=op.f("fk_outbox_deliveries_event_id_outbox_events"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_deliveries")),
    )
    op.create_index(
        op.f("ix_outbox_deliveries_event_id"), "outbox_deliveries", ["event_id"], unique=False
    )
    op.create_index(
        "ix_outbox_deliveries_ordering",
        "outbox_deliveries",
        ["listener_id", "ordering_key", "id"],
        unique=False,
        postgresql_where=sa.text("ordering_key IS NOT NULL"),
        sqlite_where=sa.text("ordering_key IS NOT NULL"),
    )
    op.create_index(
        "ix_outbox_deliveries_status_available_at",
        "outbox_deliveries",
        ["status", "available_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_deliveries_status_available_at", table_name="outbox_deliveries")
    op.drop_index("ix_outbox_deliveries_ordering", table_name="outbox_deliveries")
    op.drop_index(op.f("ix_outbox_deliveries_event_id"), table_name="outbox_deliveries")
    op.drop_table("outbox_deliveries")
    op.drop_index("uq_outbox_events_name_dedupe_key", table_name="outbox_events")
    op.drop_table("outbox_events")

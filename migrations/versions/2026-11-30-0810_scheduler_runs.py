"""scheduler_runs: job runs (unique per job, organisation and tick), run items, subjects.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 08:10:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.core.db

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_DATETIME = app.core.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "scheduler_runs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("job_id", sa.String(length=100), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("scheduled_for", UTC_DATETIME, nullable=False),
        sa.Column("triggered_by", sa.String(length=16), nullable=False),
        sa.Column("requested_by_user_id", sa.Uuid(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("users", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("cursor", sa.String(length=200), nullable=True),
        sa.Column("fanned_out", sa.Boolean(), nullable=False),
        sa.Column("error", sa.String(length=1000), nullable=True),
        sa.Column("started_at", UTC_DATETIME, nullable=False),
        sa.Column("finished_at", UTC_DATETIME, nullable=True),
        sa.CheckConstraint(
            "status IN ('running', 'succeeded', 'partial', 'failed', 'missed')",
            name=op.f("ck_scheduler_runs_status"),
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_scheduler_runs_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scheduler_runs")),
        sa.UniqueConstraint(
            "job_id",
            "organization_id",
            "scheduled_for",
            name=op.f("uq_scheduler_runs_job_id_organization_id_scheduled_for"),
        ),
    )
    op.create_index(
        "ix_scheduler_runs_org_job_started",
        "scheduler_runs",
        ["organization_id", "job_id", "started_at"],
    )
    op.create_index(
        "ix_scheduler_runs_running",
        "scheduler_runs",
        ["job_id", "organization_id"],
        postgresql_where=sa.text("status = 'running'"),
        sqlite_where=sa.text("status = 'running'"),
    )
    op.create_index(
        "uq_scheduler_runs_manual_running",
        "scheduler_runs",
        ["job_id", "organization_id"],
        unique=True,
        postgresql_where=sa.text("status = 'running' AND triggered_by = 'admin'"),
        sqlite_where=sa.text("status = 'running' AND triggered_by = 'admin'"),
    )
    op.create_table(
        "scheduler_run_items",
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("event_name", sa.String(length=200), nullable=True),
        sa.Column("dedupe_key", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["scheduler_runs.id"],
            name=op.f("fk_scheduler_run_items_run_id_scheduler_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", "key", name=op.f("pk_scheduler_run_items")),
    )
    op.create_table(
        "scheduler_subjects",
        sa.Column("job_id", sa.String(length=100), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("first_seen_at", UTC_DATETIME, nullable=False),
        sa.Column("last_run_id", sa.Uuid(), nullable=False),
        sa.Column("last_succeeded_at", UTC_DATETIME, nullable=True),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_scheduler_subjects_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "job_id", "organization_id", "key", name=op.f("pk_scheduler_subjects")
        ),
    )


def downgrade() -> None:
    op.drop_table("scheduler_subjects")
    op.drop_table("scheduler_run_items")
    op.drop_index("uq_scheduler_runs_manual_running", table_name="scheduler_runs")
    op.drop_index("ix_scheduler_runs_running", table_name="scheduler_runs")
    op.drop_index("ix_scheduler_runs_org_job_started", table_name="scheduler_runs")
    op.drop_table("scheduler_runs")

"""outbox_events.traceparent: the W3C trace context of the emit, so a durable delivery
continues the emitter's trace (OpenTelemetry, when on).

A nullable column without a default: adding it is a catalogue change on PostgreSQL, with no
rewrite of the table and no index to build.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 11:30:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("outbox_events", sa.Column("traceparent", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox_events") as batch:
        batch.drop_column("traceparent")

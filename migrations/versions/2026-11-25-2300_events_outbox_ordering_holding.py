"""events_outbox_ordering_holding: index only the deliveries that hold back their ordering key.

A dead letter now holds back the later deliveries of its key, and a running delivery holds
back every other one of its key. The claim probes, per keyed candidate, for such a delivery;
the partial index holds only pending, running and dead deliveries, not the key's done history.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 23:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HOLDING = "ordering_key IS NOT NULL AND status IN ('pending', 'running', 'dead')"
KEYED = "ordering_key IS NOT NULL"


def upgrade() -> None:
    op.create_index(
        "ix_outbox_deliveries_ordering_holding",
        "outbox_deliveries",
        ["listener_id", "ordering_key", "id"],
        unique=False,
        postgresql_where=sa.text(HOLDING),
        sqlite_where=sa.text(HOLDING),
    )
    op.drop_index("ix_outbox_deliveries_ordering", table_name="outbox_deliveries")


def downgrade() -> None:
    op.create_index(
        "ix_outbox_deliveries_ordering",
        "outbox_deliveries",
        ["listener_id", "ordering_key", "id"],
        unique=False,
        postgresql_where=sa.text(KEYED),
        sqlite_where=sa.text(KEYED),
    )
    op.drop_index("ix_outbox_deliveries_ordering_holding", table_name="outbox_deliveries")

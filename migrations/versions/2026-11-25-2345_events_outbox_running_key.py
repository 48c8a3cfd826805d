"""events_outbox_running_key: at most one running delivery per listener and ordering key.

The claim skips a keyed delivery while another of its key runs, but it decides on a snapshot:
two relays claiming at the same moment could each start one. This partial unique index makes
the rule hold in the database; the claim that loses the race retries. Duplicates left by the old
rule go back to the queue before the index is built.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 23:45:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RUNNING_KEYED = "ordering_key IS NOT NULL AND status = 'running'"


def upgrade() -> None:
    # The old claim rule let a retried delivery start while a later one of its key ran. Hand
    # every running delivery of a key but the earliest back to the queue first (its worker's
    # completion is fenced by the lease token, so its work rolls back and runs again later).
    op.execute(
        sa.text(
            "UPDATE outbox_deliveries SET status = 'pending', lease_until = NULL, "
            "lease_token = NULL, worker = NULL "
            f"WHERE {RUNNING_KEYED} AND id NOT IN ("
            "SELECT min(id) FROM outbox_deliveries "
            f"WHERE {RUNNING_KEYED} GROUP BY listener_id, ordering_key)"
        )
    )
    op.create_index(
        "uq_outbox_deliveries_running_key",
        "outbox_deliveries",
        ["listener_id", "ordering_key"],
        unique=True,
        postgresql_where=sa.text(RUNNING_KEYED),
        sqlite_where=sa.text(RUNNING_KEYED),
    )


def downgrade() -> None:
    op.drop_index("uq_outbox_deliveries_running_key", table_name="outbox_deliveries")

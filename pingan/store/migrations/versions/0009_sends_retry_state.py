"""the send ledger carries each pending message's retry state, so the notification
pipeline retries it with backoff across restarts instead of dropping it

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sends", schema=None) as batch_op:
        batch_op.add_column(sa.Column("attempts", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("next_attempt_at", sa.DateTime(timezone=True)))
        batch_op.add_column(sa.Column("attempt_started_at", sa.DateTime(timezone=True)))
        batch_op.create_index("ix_sends_due", ["status", "next_attempt_at"], unique=False)
    # Rows left pending before this revision are due now (and were attempted before).
    op.execute(
        "UPDATE sends SET next_attempt_at = updated_at, attempt_started_at = updated_at "
        "WHERE status = 'pending'"
    )


def downgrade() -> None:
    with op.batch_alter_table("sends", schema=None) as batch_op:
        batch_op.drop_index("ix_sends_due")
        batch_op.drop_column("attempt_started_at")
        batch_op.drop_column("next_attempt_at")
        batch_op.drop_column("attempts")

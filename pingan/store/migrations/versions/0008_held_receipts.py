"""delivery receipts that arrive before their message's provider id is recorded are
held, not lost

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "held_receipts",
        sa.Column("provider_id", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("provider_id"),
    )
    with op.batch_alter_table("held_receipts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_held_receipts_received_at"), ["received_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("held_receipts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_held_receipts_received_at"))
    op.drop_table("held_receipts")

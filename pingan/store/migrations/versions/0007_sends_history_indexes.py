"""a person's message history is read by recipient and by subscriber, newest first

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sends", schema=None) as batch_op:
        batch_op.create_index("ix_sends_recipient", ["recipient", "id"], unique=False)
        batch_op.create_index("ix_sends_subscriber", ["subscriber_id", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sends", schema=None) as batch_op:
        batch_op.drop_index("ix_sends_subscriber")
        batch_op.drop_index("ix_sends_recipient")

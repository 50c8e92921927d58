"""a crew may have an English name beside its Chinese one, so the console shows a
crew in the dispatcher's language

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("crews", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("name_en", sa.String(length=128), server_default="", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("crews", schema=None) as batch_op:
        batch_op.drop_column("name_en")

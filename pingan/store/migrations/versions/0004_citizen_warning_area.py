"""a citizen warning can be targeted by a polygon or circle, published as such in CAP

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("citizen_warnings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("area", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("citizen_warnings", schema=None) as batch_op:
        batch_op.drop_column("area")

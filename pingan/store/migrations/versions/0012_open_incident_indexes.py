"""correlation candidates come from partial indexes of the open site incidents, which
PostgreSQL uses even before a fresh table has statistics

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As in pingan/store/schema.py (a migration keeps its own copy: it must not change).
OPEN_SITE = "scope = 'site' AND status <> 'resolved'"
WITH_RADIUS = OPEN_SITE + " AND correlation_radius_m IS NOT NULL"


def upgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_index("ix_incidents_near")
        batch_op.drop_index("ix_incidents_radius")
        for name, column, where in (
            ("ix_incidents_open_near", "lat", OPEN_SITE),
            ("ix_incidents_open_radius", "correlation_radius_m", WITH_RADIUS),
        ):
            batch_op.create_index(
                name,
                ["playbook_id", column],
                unique=False,
                postgresql_where=sa.text(where),
                sqlite_where=sa.text(where),
            )


def downgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_index("ix_incidents_open_radius")
        batch_op.drop_index("ix_incidents_open_near")
        batch_op.create_index(
            "ix_incidents_near", ["playbook_id", "scope", "status", "lat"], unique=False
        )
        batch_op.create_index(
            "ix_incidents_radius",
            ["playbook_id", "scope", "status", "correlation_radius_m"],
            unique=False,
        )

"""incidents find their correlation candidates through indexes

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("correlation_radius_m", sa.Float(), nullable=True))
        batch_op.create_index(
            "ix_incidents_near", ["playbook_id", "scope", "status", "lat"], unique=False
        )
        batch_op.create_index(
            "ix_incidents_radius",
            ["playbook_id", "scope", "status", "correlation_radius_m"],
            unique=False,
        )
    # Open incidents from before keep correlating: their radius from their snapshot.
    conn = op.get_bind()
    incidents = sa.table(
        "incidents",
        sa.column("id", sa.Integer),
        sa.column("status", sa.String),
        sa.column("playbook_snapshot", sa.JSON),
        sa.column("correlation_radius_m", sa.Float),
    )
    rows = conn.execute(
        sa.select(incidents.c.id, incidents.c.playbook_snapshot).where(
            incidents.c.status != "resolved"
        )
    ).all()
    for row in rows:
        snapshot = row.playbook_snapshot
        if isinstance(snapshot, str):
            snapshot = json.loads(snapshot)
        radius = ((snapshot or {}).get("correlation") or {}).get("radius_m")
        if radius:
            conn.execute(
                sa.update(incidents)
                .where(incidents.c.id == row.id)
                .values(correlation_radius_m=float(radius))
            )


def downgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_index("ix_incidents_radius")
        batch_op.drop_index("ix_incidents_near")
        batch_op.drop_column("correlation_radius_m")

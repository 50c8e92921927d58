"""an assignment keeps why its crew was chosen as data (pingan.crews.CrewReason), so
the console words it in the dispatcher's language; older rows get it from their text

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The English choose_crews wrote before this revision, one rule per alternative.
_WHY = re.compile(
    r"^(?:owns road segment (?P<segment>\S+)"
    r"|same unit (?P<unit>\S*) as the segment owner \(owner busy or off shift\)"
    r"|nearest available with skill '(?P<skill>[^']*)')"
    r": (?:(?P<km>\d+(?:\.\d+)?) km from base|no location given)"
    r", (?P<load>\d+) active task\(s\), (?P<recent>\d+) in the last 24 h$"
)


def _reason(why: str, skill: str, unit: str) -> dict[str, Any] | None:
    found = _WHY.match(why or "")
    if found is None:
        return None  # written by hand or by something else: the console shows the text
    rule = (
        "segment_owner"
        if found["segment"]
        else "owner_unit"
        if found["unit"] is not None
        else "nearest"
    )
    return {
        "rule": rule,
        "skill": found["skill"] or skill,
        "segment": found["segment"],
        "unit": found["unit"] or unit,
        "km": float(found["km"]) if found["km"] else None,
        "load": int(found["load"]),
        "recent": int(found["recent"]),
    }


def upgrade() -> None:
    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reason", sa.JSON(), nullable=True))
    table = sa.table(
        "assignments",
        sa.column("id", sa.Integer),
        sa.column("crew_id", sa.String),
        sa.column("skill", sa.String),
        sa.column("why", sa.Text),
        sa.column("reason", sa.JSON),
    )
    crews = sa.table("crews", sa.column("id", sa.String), sa.column("unit", sa.String))
    conn = op.get_bind()
    units = dict(conn.execute(sa.select(crews.c.id, crews.c.unit)).all())
    rows = conn.execute(sa.select(table.c.id, table.c.crew_id, table.c.skill, table.c.why)).all()
    for row in rows:
        reason = _reason(row.why, row.skill, units.get(row.crew_id, ""))
        if reason is not None:
            conn.execute(table.update().where(table.c.id == row.id).values(reason=reason))


def downgrade() -> None:
    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.drop_column("reason")

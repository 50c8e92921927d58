"""The crews table: the roster as dispatch sees it, with shift changes made through
the API."""

from __future__ import annotations

import dataclasses

from sqlalchemy import Connection, select

from pingan.crews import Crew, Override, crew_from_row
from pingan.store import as_utc
from pingan.store.schema import (
    crew_overrides,
    crews,
)


def load_crews(conn: Connection) -> list[Crew]:
    """The crews as dispatch sees them: the roster, plus shift changes made through
    the API (storm call-outs, sick leave)."""
    extra: dict[str, list[Override]] = {}
    for o in conn.execute(select(crew_overrides).order_by(crew_overrides.c.id.desc())):
        extra.setdefault(o.crew_id, []).append(
            Override(as_utc(o.starts_at), as_utc(o.ends_at), bool(o.on_shift))
        )  # type: ignore[arg-type]
    crews_now = []
    for row in conn.execute(select(crews)).all():
        crew = crew_from_row(row)
        if crew.id in extra:  # the newest API change wins over the file's overrides
            crew = dataclasses.replace(crew, overrides=(*extra[crew.id], *crew.overrides))
        crews_now.append(crew)
    return crews_now

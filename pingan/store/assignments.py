"""The assignments table: the one way an assignment is created or changes state.
Who may move it where is decided in the core (pingan/core/assignments.py); this only
writes, and a move from a state the row is no longer in does nothing."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, update

from pingan.store.db import crews_freed
from pingan.store.schema import assignments
from pingan.vocabulary import AssignmentState

# When a crew reached each step (the KPIs read them).
STAMPS = {
    AssignmentState.ACKNOWLEDGED: "acknowledged_at",
    AssignmentState.EN_ROUTE: "en_route_at",
    AssignmentState.ON_SCENE: "on_scene_at",
    AssignmentState.DONE: "done_at",
}


def insert_assignment(
    conn: Connection,
    incident_id: int,
    crew_id: str,
    skill: str,
    why: str,
    level: str,
    ack_due_at: datetime | None,
    now: datetime,
    reason: Mapping[str, Any] | None = None,
) -> int:
    """A new task, waiting for the crew's answer. `why` is the choice in English,
    `reason` the same as data (a CrewReason's fields) for the console to word."""
    created = conn.execute(
        assignments.insert(),
        dict(
            incident_id=incident_id,
            crew_id=crew_id,
            skill=skill,
            state=AssignmentState.ASSIGNED,
            why=why,
            reason=dict(reason) if reason is not None else None,
            level=level,
            ack_due_at=ack_due_at,
            created_at=now,
            updated_at=now,
        ),
    )
    return int(created.inserted_primary_key[0])


def move_assignment(
    conn: Connection,
    assignment_id: int,
    to: AssignmentState,
    now: datetime,
    allowed_from: Iterable[str] | None = None,
    note: str | None = None,
) -> bool:
    """Set the state (only from `allowed_from`, when given). True if it moved."""
    query = update(assignments).where(assignments.c.id == assignment_id)
    if allowed_from is not None:
        query = query.where(assignments.c.state.in_(list(allowed_from)))
    values: dict[str, object] = {"state": to, "updated_at": now}
    if to in STAMPS:
        values[STAMPS[to]] = now
    if note is not None:
        values["note"] = note[:500]
    moved = conn.execute(query.values(**values)).rowcount == 1
    if moved and to in (AssignmentState.CANCELLED, AssignmentState.TIMED_OUT):
        crews_freed(conn)
    return moved


def cancel_open_assignments(
    conn: Connection,
    incident_id: int,
    states: Iterable[str],
    now: datetime,
    note: str | None = None,
) -> int:
    """Stand down every crew of the incident whose task is in `states`. How many."""
    values: dict[str, object] = {"state": AssignmentState.CANCELLED, "updated_at": now}
    if note is not None:
        values["note"] = note[:500]
    cancelled = conn.execute(
        update(assignments)
        .where(assignments.c.incident_id == incident_id, assignments.c.state.in_(list(states)))
        .values(**values)
    ).rowcount
    if cancelled:
        crews_freed(conn)
    return int(cancelled)

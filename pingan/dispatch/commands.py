"""What a dispatcher asks of dispatch from the console: take a task off a crew and
give it to the next, or dispatch again now. Each is audited and goes through the one
dispatch entry point in its own transaction."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from pingan.core.assignments import REASSIGNABLE
from pingan.dispatch.staffing import dispatch_for_level, follow_assignments
from pingan.store import Store, record_audit
from pingan.store.assignments import move_assignment
from pingan.store.schema import assignments, incidents
from pingan.vocabulary import AssignmentState


def reassign(store: Store, assignment_id: int, actor: str, now: datetime) -> int | None:
    """The incident's id, or None when the task cannot be taken off its crew now
    (unknown, or the crew is already on scene or done)."""
    with store.transaction() as conn:
        row = conn.execute(
            select(assignments.c.incident_id, assignments.c.state).where(
                assignments.c.id == assignment_id
            )
        ).first()
        if row is None or row.state not in REASSIGNABLE:
            return None
        why = f"reassigned by {actor}"
        move_assignment(conn, assignment_id, AssignmentState.CANCELLED, now, note=why)
        record_audit(
            conn,
            now,
            actor,
            "assignment.reassigned",
            "assignment",
            assignment_id,
            {"incident_id": row.incident_id},
        )
        dispatch_for_level(conn, row.incident_id, now)
        status = conn.execute(
            select(incidents.c.status).where(incidents.c.id == row.incident_id)
        ).scalar_one()
        follow_assignments(conn, row.incident_id, status, why, now)
        return int(row.incident_id)


def dispatch_now(store: Store, incident_id: int, actor: str, now: datetime) -> bool:
    """False when there is no such incident."""
    with store.transaction() as conn:
        found = conn.execute(select(incidents.c.id).where(incidents.c.id == incident_id)).first()
        if found is None:
            return False
        record_audit(conn, now, actor, "incident.dispatch_requested", "incident", incident_id, {})
        dispatch_for_level(conn, incident_id, now)
        return True

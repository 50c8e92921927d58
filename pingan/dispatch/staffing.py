"""Staffing an incident, the shell around the core's dispatch plan: load the state
the plan needs (incident, roster, load, warnings in force), call
`pingan.core.dispatch.plan_dispatch`, write the plan (assignments, holds, unstaffed
and supervisor alerts, escalation timers). `dispatch_for_level` is the one entry
point; the agent, the timers, the API and the console all come through it."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Text, bindparam, cast, func, select

from pingan.city import load_city
from pingan.core import topics
from pingan.core.assignments import ACTIVE_STATES
from pingan.core.dispatch import (
    AssignmentView,
    DispatchPlan,
    DispatchState,
    IncidentView,
    Occasion,
    WarningInForce,
    dispatch_applies,
    plan_dispatch,
    staffing_choices,
)
from pingan.core.events import BadEvent
from pingan.core.incidents import sources_matter, status_after_crew_change
from pingan.dispatch.timers import alert_staff, schedule_escalation
from pingan.queries import warnings_in_force
from pingan.store import SYSTEM, emit, record_audit
from pingan.store.assignments import insert_assignment
from pingan.store.crews import load_crews
from pingan.store.db import DISPATCH_CONTEXT, read_ahead, scratch, take_read_ahead
from pingan.store.incidents import (
    UPDATE_INCIDENT,
    incident_row,
    locked_incident_rows,
    set_incident_status,
    set_unstaffed,
)
from pingan.store.schema import (
    assignments,
    incident_warnings,
    incidents,
    reports,
)
from pingan.vocabulary import AssignmentState, IncidentStatus
from playbooks.snapshot import playbook_from_snapshot

log = logging.getLogger("pingan.dispatch")


def load_dispatch_context(conn: Connection, now: datetime) -> dict[str, Any]:
    """What dispatch reads that is the same for every incident: the crews (with shift
    changes), their load, the warnings in force, the city."""
    load = dict(
        conn.execute(
            select(assignments.c.crew_id, func.count())
            .where(assignments.c.state.in_([s.value for s in ACTIVE_STATES]))
            .group_by(assignments.c.crew_id)
        ).all()
    )
    recent = dict(
        conn.execute(
            select(assignments.c.crew_id, func.count())
            .where(assignments.c.created_at >= now - timedelta(hours=24))
            .group_by(assignments.c.crew_id)
        ).all()
    )
    return {
        "crews": tuple(load_crews(conn)),
        "active_load": load,
        "recent": recent,
        "warnings": tuple(
            WarningInForce(w["event"], w["level"], frozenset(w["districts"]))
            for w in warnings_in_force(conn, now)
        ),
        "city_districts": frozenset(load_city().districts),
    }


# Built once (see pingan/store/incidents.py): these run for every dispatch of a storm.
_FIRST_SEGMENTS = (
    select(reports.c.incident_id, reports.c.segment)
    .where(
        reports.c.incident_id.in_(bindparam("ids", expanding=True)),
        reports.c.segment.is_not(None),
    )
    .order_by(reports.c.id)
)
_ASSIGNMENT_VIEWS = select(
    assignments.c.incident_id,
    assignments.c.crew_id,
    assignments.c.skill,
    assignments.c.state,
).where(assignments.c.incident_id.in_(bindparam("ids", expanding=True)))
# Whether anything still drives the incident: a threshold, or a warning in force.
_SOURCES_ACTIVE = select(
    incidents.c.thresholds_active,
    select(incident_warnings.c.warning_id)
    .where(
        incident_warnings.c.incident_id == incidents.c.id,
        incident_warnings.c.state == "active",
    )
    .exists()
    .label("warned"),
).where(incidents.c.id == bindparam("incident_id"))
_ASSIGNMENT_STATES = select(assignments.c.state).where(
    assignments.c.incident_id == bindparam("incident_id")
)


def _incident_views(conn: Connection, rows: Sequence[Any]) -> list[IncidentView]:
    """Incidents as dispatch sees them (their first placed segment and their
    assignments), read for many at once."""
    segments: dict[int, str] = {}
    mine: dict[int, list[AssignmentView]] = {}
    for start in range(0, len(rows), 500):
        ids = [r.id for r in rows[start : start + 500]]
        for r in conn.execute(_FIRST_SEGMENTS, {"ids": ids}):
            segments.setdefault(r.incident_id, r.segment)
        for a in conn.execute(_ASSIGNMENT_VIEWS, {"ids": ids}):
            mine.setdefault(a.incident_id, []).append(AssignmentView(a.crew_id, a.skill, a.state))
    return [
        IncidentView(
            id=int(r.id),
            level=r.level,
            status=r.status,
            held=bool(r.held),
            unstaffed=bool(r.unstaffed),
            lat=r.lat,
            lon=r.lon,
            segment=segments.get(r.id),
            assignments=tuple(mine.get(r.id, ())),
        )
        for r in rows
    ]


def load_dispatch_state(
    conn: Connection, incident: Any, context: dict[str, Any], view: IncidentView | None = None
) -> DispatchState:
    """What dispatch planning reads for one incident (its row given, and its view when
    read ahead), with what it reads for every incident (`context`, from
    load_dispatch_context)."""
    if view is None:
        [view] = _incident_views(conn, [incident])
    return DispatchState(
        incident=view,
        playbook=playbook_from_snapshot(incident.playbook_snapshot),
        **context,
    )


# The kind of rows read_dispatch_ahead keeps: incident id -> (locked row, its view).
_AHEAD = "dispatch"


def read_dispatch_ahead(conn: Connection, incident_ids: Iterable[int]) -> None:
    """Lock and read, for a batch of dispatch events at once, the incidents it will
    staff and their views: three statements for the batch instead of three for each
    event. dispatch_for_level takes each (once) instead of reading it."""
    rows = locked_incident_rows(conn, incident_ids)
    views = _incident_views(conn, rows)
    read_ahead(conn, _AHEAD, {r.id: (r, v) for r, v in zip(rows, views, strict=True)})


def dispatch_for_level(
    conn: Connection, incident_id: int, now: datetime, occasion: Occasion = Occasion.NEED
) -> Any:
    """The one dispatch entry point: load the incident's dispatch state, plan
    (pingan/core/dispatch.py), write the plan. Returns the incident's row as it was
    read before the plan was written (its playbook and level are what dispatch used)."""
    # The row lock serialises the callers (the agent, the API, the console) on one
    # incident, so two of them cannot staff it twice (PostgreSQL; SQLite has one writer).
    ahead = take_read_ahead(conn, _AHEAD, incident_id)
    incident, view = ahead if ahead else (incident_row(conn, incident_id, lock=True), None)
    if incident is None:
        raise BadEvent(f"incident {incident_id} does not exist")
    if not dispatch_applies(incident.status, bool(incident.held), occasion):
        return incident  # nothing to plan: skip loading the roster
    state = load_dispatch_state(conn, incident, _shared_context(conn, now), view)
    write_dispatch_plan(conn, state, plan_dispatch(state, now, occasion), now)
    return incident


# Within one transaction (a batch of dispatch events) the roster, the warnings in force
# and the crews' load are read once and kept up to date as crews are assigned.
def _shared_context(conn: Connection, now: datetime) -> dict[str, Any]:
    memo = scratch(conn)
    cached = memo.get(DISPATCH_CONTEXT)
    if cached is None or cached[0] != now:
        cached = (now, load_dispatch_context(conn, now))
        memo[DISPATCH_CONTEXT] = cached
    return cached[1]


def _count_assignment(conn: Connection, crew_id: str) -> None:
    cached = scratch(conn).get(DISPATCH_CONTEXT)
    if cached is not None:
        for key in ("active_load", "recent"):
            cached[1][key][crew_id] = cached[1][key].get(crew_id, 0) + 1


def write_dispatch_plan(
    conn: Connection, state: DispatchState, plan: DispatchPlan, now: datetime
) -> None:
    incident = state.incident
    if not plan.act:
        return
    if plan.release:
        conn.execute(UPDATE_INCIDENT, {"incident_key": incident.id, "held": 0})
    if plan.hold:
        conn.execute(UPDATE_INCIDENT, {"incident_key": incident.id, "held": 1})
        record_audit(
            conn, now, SYSTEM, "incident.held", "incident", incident.id, {"reason": plan.hold}
        )
        log.info("incident held incident=%s (%s)", incident.id, plan.hold)
        return
    for batch in plan.batches:
        first_new: int | None = None
        for assign in batch.assigns:
            assignment_id = insert_assignment(
                conn,
                incident.id,
                assign.crew.id,
                assign.skill,
                assign.why,
                incident.level,
                assign.ack_due_at,
                now,
                reason=assign.reason.params(),
            )
            first_new = first_new or assignment_id
            _count_assignment(conn, assign.crew.id)
            record_audit(
                conn,
                now,
                SYSTEM,
                "assignment.created",
                "assignment",
                assignment_id,
                {
                    "incident_id": incident.id,
                    "crew": assign.crew.id,
                    "why": assign.why,
                    "level": incident.level,
                },
            )
            emit(
                conn,
                topics.NOTIFICATIONS,
                str(incident.id),
                {"type": "crew.assignment", "assignment_id": assignment_id},
                now,
            )
            log.info(
                "crew assigned incident=%s assignment=%s crew=%s",
                incident.id,
                assignment_id,
                assign.crew.id,
            )
        if first_new is not None:
            schedule_escalation(
                conn,
                incident.id,
                batch.skill,
                incident.level,
                first_new,
                batch.escalation,
                now,
            )
    if incident.unstaffed != plan.unstaffed:
        set_unstaffed(conn, incident.id, plan.unstaffed)
    if incident.unstaffed and not plan.unstaffed:
        record_audit(
            conn, now, SYSTEM, "incident.staffed", "incident", incident.id, {"crews": plan.crews}
        )
        log.info("incident staffed incident=%s crews=%s", incident.id, ",".join(plan.crews))
    if plan.supervisor_alert is not None:
        record_audit(
            conn,
            now,
            SYSTEM,
            "incident.unstaffed",
            "incident",
            incident.id,
            {"missing": list(plan.short)},
        )
        log.warning("incident unstaffed incident=%s missing=%s", incident.id, list(plan.short))
        alert_staff(
            conn,
            "supervisor",
            plan.supervisor_alert.unit,
            plan.supervisor_alert.text,
            incident.id,
            now,
        )
    # The states dispatch read moments ago, with the crews it just assigned.
    states = [a.state for a in incident.assignments] + [
        AssignmentState.ASSIGNED for batch in plan.batches for _ in batch.assigns
    ]
    follow_assignments(conn, incident.id, incident.status, "crews assigned", now, states)


def restaffable_incidents(
    conn: Connection,
    now: datetime,
    skip: set[int] = frozenset(),  # type: ignore[assignment]
) -> list[int]:
    """Open, unheld incidents flagged unstaffed for which the policy would now find at
    least one crew (a crew came on shift, finished other work, or joined the roster).
    After a storm thousands may wait: the shared state is read once, the incidents in
    bulk, and none of them at all while no crew is free (the clock asks every 15 s,
    through the whole storm)."""
    context = load_dispatch_context(conn, now)
    load = context["active_load"]
    if not any(c.on_shift(now) and load.get(c.id, 0) < c.capacity for c in context["crews"]):
        return []
    rows = [
        r
        for r in conn.execute(
            select(
                incidents.c.id,
                incidents.c.level,
                incidents.c.status,
                incidents.c.held,
                incidents.c.unstaffed,
                incidents.c.lat,
                incidents.c.lon,
                cast(incidents.c.playbook_snapshot, Text).label("playbook_snapshot"),
            )
            .where(
                incidents.c.unstaffed == 1,
                incidents.c.held == 0,
                incidents.c.status != IncidentStatus.RESOLVED,
            )
            .order_by(incidents.c.id)
        )
        if r.id not in skip
    ]
    if not rows:
        return []
    found = []
    for row, view in zip(rows, _incident_views(conn, rows), strict=True):
        state = DispatchState(
            incident=view, playbook=playbook_from_snapshot(row.playbook_snapshot), **context
        )
        if any(choices for _, _, choices in staffing_choices(state, now)):
            found.append(view.id)
    return found


def release_incident(conn: Connection, incident_id: int, actor: str, now: datetime) -> bool:
    """A dispatcher releases a held incident: crews are dispatched now."""
    held = conn.execute(
        select(incidents.c.held).where(incidents.c.id == incident_id)
    ).scalar_one_or_none()
    if not held:
        return False
    record_audit(conn, now, actor, "incident.released", "incident", incident_id, {})
    dispatch_for_level(conn, incident_id, now, Occasion.RELEASE)
    return True


def _sources_active(conn: Connection, incident_id: int) -> bool:
    row = conn.execute(_SOURCES_ACTIVE, {"incident_id": incident_id}).one()
    return bool(row.thresholds_active or row.warned)


def follow_assignments(
    conn: Connection,
    incident_id: int,
    old: str,
    reason: str,
    now: datetime,
    states: Sequence[str] | None = None,
) -> str:
    """Move the incident's status after its crews changed. `states`: its assignments'
    states, where the caller has just read them."""
    if states is None:
        states = conn.execute(_ASSIGNMENT_STATES, {"incident_id": incident_id}).scalars().all()
    sources = sources_matter(states) and _sources_active(conn, incident_id)
    new = status_after_crew_change(states, sources)
    if new != old:
        set_incident_status(conn, incident_id, old, new, reason, now)
        record_audit(
            conn,
            now,
            SYSTEM,
            f"incident.{new}",
            "incident",
            incident_id,
            {"from": old, "reason": reason},
        )
    return new

"""Commands people give (a crew acknowledging, a crew finishing). Each validates the
move with the pure lifecycle, then writes the change, its audit row and its event in
one transaction. HTTP today; SMS replies and signed links call the same functions."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, text, update

from pingan.core import topics
from pingan.core.assignments import CrewAction, TransitionRefused, next_state
from pingan.crews import Roster, crew_to_row
from pingan.intake.accept import (
    Accepted,
    accept_report,
    caller_hash,
)
from pingan.intake.classify import classify
from pingan.intake.location import locate
from pingan.intake.reports import MAX_DESCRIPTION, ReportDraft
from pingan.store import Store, emit, record_audit
from pingan.store.assignments import move_assignment
from pingan.store.schema import (
    assignments,
    crews,
    incidents,
    reports,
    road_segments,
    staff,
)
from pingan.vocabulary import LEVEL_ORDER, AssignmentState
from playbooks.snapshot import playbook_from_snapshot


class NotFound(LookupError):
    pass


@dataclass(frozen=True)
class CrewActionResult:
    assignment_id: int
    incident_id: int
    state: str


def apply_crew_action(
    store: Store,
    assignment_id: int,
    action: CrewAction,
    actor: str,
    now: datetime,
    note: str = "",
    crew_id: str | None = None,
) -> CrewActionResult:
    """Raises NotFound or TransitionRefused (with the reason) and writes nothing then
    but the audit of the refusal. `crew_id`, when given, must be the assigned crew."""
    from pingan.dispatch.timers import schedule_arrival

    refused: TransitionRefused | None = None
    with store.transaction() as conn:
        row = conn.execute(
            select(
                assignments.c.state,
                assignments.c.incident_id,
                assignments.c.crew_id,
                assignments.c.skill,
                assignments.c.level,
                incidents.c.playbook_snapshot,
            )
            .join(incidents, incidents.c.id == assignments.c.incident_id)
            .where(assignments.c.id == assignment_id)
            .with_for_update()
        ).first()
        if row is None or (crew_id is not None and row.crew_id != crew_id):
            raise NotFound(f"assignment {assignment_id} does not exist")
        try:
            new = next_state(row.state, action)
        except TransitionRefused as exc:
            refused = exc
        else:
            move_assignment(conn, assignment_id, new, now, note=note or None)
            record_audit(
                conn,
                now,
                actor,
                f"assignment.{new.value}",
                "assignment",
                assignment_id,
                {"from": row.state, "incident_id": row.incident_id, "note": note[:200]},
            )
            emit(
                conn,
                topics.CREW_EVENTS,
                str(row.incident_id),
                {
                    "type": f"assignment.{new.value}",
                    "assignment_id": assignment_id,
                    "incident_id": row.incident_id,
                },
                now,
            )
            if new is AssignmentState.ACKNOWLEDGED:
                playbook = playbook_from_snapshot(row.playbook_snapshot)
                action_spec = playbook.dispatch_for(row.level, row.skill)
                target = action_spec.arrive_within_min if action_spec else None
                if target:
                    schedule_arrival(conn, assignment_id, row.incident_id, target, now)
    if refused is not None:
        with store.transaction() as conn:
            record_audit(
                conn,
                now,
                actor,
                f"assignment.{action.value}.refused",
                "assignment",
                assignment_id,
                {"state": row.state, "reason": str(refused)},
            )
        raise refused
    return CrewActionResult(assignment_id, row.incident_id, new.value)


def sync_roster(store: Store, roster: Roster, now: datetime) -> int:
    """Make the crews and staff tables match the roster file; changes are audited.
    Crews no longer in the file stay (assignments point at them) but lose their skills.
    Processes starting together (compose's scaled `http`) take turns: on PostgreSQL an
    advisory lock (SQLite's BEGIN IMMEDIATE already does), so the second one finds the
    crews the first wrote instead of inserting them again."""
    changed = 0
    with store.transaction() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('pingan:roster'))"))
        current = {row.id: row for row in conn.execute(select(crews)).all()}
        listed = set()
        for crew in roster.crews:
            listed.add(crew.id)
            values = crew_to_row(crew)
            old = current.get(crew.id)
            if old is None:
                conn.execute(crews.insert().values(id=crew.id, **values))
            elif any(getattr(old, k) != v for k, v in values.items()):
                conn.execute(update(crews).where(crews.c.id == crew.id).values(**values))
            else:
                continue
            changed += 1
            record_audit(conn, now, "roster", "crew.upserted", "crew", crew.id, {})
        for crew_id in set(current) - listed:
            if current[crew_id].skills:
                conn.execute(update(crews).where(crews.c.id == crew_id).values(skills=[]))
                record_audit(conn, now, "roster", "crew.retired", "crew", crew_id, {})
                changed += 1
        conn.execute(road_segments.delete())
        if roster.segments:
            conn.execute(
                road_segments.insert(),
                [{"id": s.id, "name": s.name, "kind": s.kind} for s in roster.segments],
            )
        conn.execute(staff.delete())
        for person in roster.staff:
            conn.execute(
                staff.insert().values(
                    role=person.role, unit=person.unit, name=person.name, phone=person.phone
                )
            )
    return changed


class NotAllowed(ValueError):
    """The command is not allowed in the current state; the message says why."""


class NotWaiting(NotAllowed):
    """The report is not (or no longer) waiting for review: someone else placed it."""


def resolve_by_dispatcher(
    store: Store, incident_id: int, reason: str, actor: str, now: datetime
) -> None:
    """A dispatcher closes an incident (tasks still open stand down), if its playbook
    allows resolution by a dispatcher."""
    from pingan.store.incidents import resolve_incident

    with store.transaction() as conn:
        row = _live_incident(conn, incident_id)
        if row.status == "resolved":
            raise NotAllowed(f"incident {incident_id} is already resolved")
        allowed = row.playbook_snapshot.get("resolution", {}).get("when", [])
        if "dispatcher" not in allowed:
            raise NotAllowed(
                f"incident {incident_id}: its playbook resolves only by {', '.join(allowed)}"
            )
        resolve_incident(
            conn, incident_id, f"resolved by dispatcher: {reason}", actor, now, outcome=reason
        )


@dataclass(frozen=True)
class FreeTextReport:
    accepted: Accepted
    category: str
    confidence: float
    words: tuple[str, ...]


def accept_free_text(
    store: Store,
    text: str,
    phone: str | None,
    source: str,
    actor: str,
    now: datetime,
    service_codes: Collection[str],
    lat: float | None = None,
    lon: float | None = None,
    address: str | None = None,
) -> FreeTextReport:
    """A report in the caller's own words (SMS, a call taken by an operator): classify
    it; when the category is unsure or not one we handle, keep it for review."""
    decision = classify(f"{address or ''} {text}")
    review = None
    category = decision.category
    if decision.needs_review or category not in service_codes:
        review = (
            f"category unsure: {category} at confidence {decision.confidence:.2f}"
            f" ({', '.join(decision.words) or 'no cue words'})"
        )
        category = category if category in service_codes else "unclassified"
    draft = ReportDraft(
        category,
        lat,
        lon,
        address,
        text.strip()[:MAX_DESCRIPTION],
        None,
        {"phone": phone} if phone else {},
    )
    classification = {
        "category": decision.category,
        "confidence": decision.confidence,
        "words": list(decision.words),
    }
    accepted = accept_report(store, draft, source, actor, now, classification, review)
    return FreeTextReport(accepted, decision.category, decision.confidence, decision.words)


def resolve_review(
    store: Store,
    report_id: int,
    service_code: str,
    lat: float | None,
    lon: float | None,
    address: str | None,
    actor: str,
    now: datetime,
) -> None:
    """A dispatcher sets the category and place of a report waiting for review; it then
    goes through the pipeline like any other."""
    located = locate(lat, lon, address or "")
    if located.lat is None:
        raise NotAllowed("location: give lat/long or an address the gazetteer knows")
    with store.transaction() as conn:
        row = conn.execute(
            select(reports.c.review_reason, reports.c.incident_id)
            .where(reports.c.id == report_id)
            .with_for_update()
        ).first()
        if row is None:
            raise NotFound(f"report {report_id} does not exist")
        if row.review_reason is None or row.incident_id is not None:
            raise NotWaiting(f"report {report_id} is not waiting for review")
        conn.execute(
            update(reports)
            .where(reports.c.id == report_id)
            .values(
                service_code=service_code,
                lat=located.lat,
                lon=located.lon,
                address=address or None,
                district=located.district,
                segment=located.segment,
                located_by="coordinates" if lat is not None else "gazetteer",
                review_reason=None,
            )
        )
        record_audit(
            conn,
            now,
            actor,
            "report.reviewed",
            "report",
            report_id,
            {"service_code": service_code, "district": located.district, "was": row.review_reason},
        )
        emit(
            conn,
            topics.REPORTS,
            located.district or "unknown",
            {"type": "report.accepted", "report_id": report_id},
            now,
        )


def record_satisfaction(store: Store, phone: str, score: int, now: datetime) -> int | None:
    """A caller's 1-5 reply: it rates their latest resolved report not yet rated.
    Returns that report's id, or None when there is nothing to rate."""
    caller = caller_hash(phone)
    with store.transaction() as conn:
        row = conn.execute(
            select(reports.c.id)
            .join(incidents, incidents.c.id == reports.c.incident_id)
            .where(
                reports.c.caller_hash == caller,
                reports.c.satisfaction.is_(None),
                incidents.c.status == "resolved",
            )
            .order_by(reports.c.id.desc())
            .limit(1)
        ).first()
        if row is None:
            return None
        conn.execute(update(reports).where(reports.c.id == row.id).values(satisfaction=score))
        record_audit(conn, now, "citizen", "report.rated", "report", row.id, {"score": score})
        return int(row.id)


def _live_incident(conn: Any, incident_id: int) -> Any:
    row = conn.execute(
        select(incidents).where(incidents.c.id == incident_id).with_for_update()
    ).first()
    if row is None:
        raise NotFound(f"incident {incident_id} does not exist")
    return row


def confirm_incident(store: Store, incident_id: int, actor: str, now: datetime) -> str:
    """A dispatcher confirms an incident. One still waiting for corroborating reports
    (level 'watch') starts its response at the playbook's report level at once."""
    with store.transaction() as conn:
        row = _live_incident(conn, incident_id)
        if row.status == "resolved":
            raise NotAllowed(f"incident {incident_id} is resolved; reopen it first")
        record_audit(
            conn, now, actor, "incident.confirmed", "incident", incident_id, {"level": row.level}
        )
        if row.level != "watch":
            return str(row.level)
        playbook = playbook_from_snapshot(row.playbook_snapshot)
        levels = [
            t.level for t in playbook.triggers if getattr(t, "category", None) == row.category
        ]
        level = min(levels, key=LEVEL_ORDER.index) if levels else "routine"
        conn.execute(
            update(incidents)
            .where(incidents.c.id == incident_id)
            .values(level=level, updated_at=now)
        )
        emit(
            conn,
            topics.INCIDENTS,
            str(incident_id),
            {"type": "incident.upgraded", "incident_id": incident_id, "from": "watch", "to": level},
            now,
        )
        return level


def merge_incidents(store: Store, keep_id: int, merge_id: int, actor: str, now: datetime) -> None:
    """Two incidents are one: the reports move to `keep_id`; the other is resolved as
    merged, and crews still on it stand down."""
    from pingan.store.incidents import resolve_incident

    if keep_id == merge_id:
        raise NotAllowed("an incident cannot be merged into itself")
    with store.transaction() as conn:
        keep, gone = _live_incident(conn, keep_id), _live_incident(conn, merge_id)
        if "resolved" in (keep.status, gone.status):
            raise NotAllowed("only open incidents can be merged")
        if keep.category != gone.category:
            raise NotAllowed(f"categories differ ({keep.category} / {gone.category})")
        moved = conn.execute(
            update(reports).where(reports.c.incident_id == merge_id).values(incident_id=keep_id)
        ).rowcount
        record_audit(
            conn,
            now,
            actor,
            "incident.merged",
            "incident",
            keep_id,
            {"merged": merge_id, "reports_moved": moved},
        )
        resolve_incident(conn, merge_id, f"merged into incident {keep_id} by {actor}", actor, now)


def split_incident(
    store: Store, incident_id: int, report_ids: list[int], actor: str, now: datetime
) -> int:
    """Some reports are about something else: they become a new incident under the same
    playbook snapshot and level, which gets its own crews."""
    from pingan.store.incidents import insert_incident, set_incident_status

    with store.transaction() as conn:
        row = _live_incident(conn, incident_id)
        mine = set(
            conn.execute(select(reports.c.id).where(reports.c.incident_id == incident_id)).scalars()
        )
        wanted = set(report_ids)
        if not wanted or not wanted <= mine:
            raise NotAllowed(
                f"reports {sorted(wanted - mine) or '[]'} are not on incident {incident_id}"
            )
        if wanted == mine:
            raise NotAllowed("leave at least one report on the original incident")
        first = conn.execute(
            select(reports.c.lat, reports.c.lon).where(reports.c.id == min(wanted))
        ).one()
        new_id = insert_incident(
            conn,
            category=row.category,
            level=row.level,
            scope=row.scope,
            district=row.district,
            playbook=playbook_from_snapshot(row.playbook_snapshot),
            lat=first.lat,
            lon=first.lon,
            now=now,
            snapshot=row.playbook_snapshot,
        )
        conn.execute(update(reports).where(reports.c.id.in_(wanted)).values(incident_id=new_id))
        set_incident_status(
            conn, new_id, None, "open", f"split from incident {incident_id} by {actor}", now
        )
        record_audit(
            conn,
            now,
            actor,
            "incident.split",
            "incident",
            incident_id,
            {"new_incident": new_id, "reports": sorted(wanted)},
        )
        emit(
            conn,
            topics.INCIDENTS,
            str(new_id),
            {"type": "incident.opened", "incident_id": new_id},
            now,
        )
        return new_id


def reopen_incident(store: Store, incident_id: int, reason: str, actor: str, now: datetime) -> None:
    """The tree is back on the road: a resolved incident opens again and gets crews."""
    from pingan.store.incidents import set_incident_status

    with store.transaction() as conn:
        row = _live_incident(conn, incident_id)
        if row.status != "resolved":
            raise NotAllowed(f"incident {incident_id} is not resolved")
        conn.execute(
            update(incidents).where(incidents.c.id == incident_id).values(resolved_at=None)
        )
        set_incident_status(
            conn, incident_id, "resolved", "open", f"reopened by {actor}: {reason}", now
        )
        record_audit(
            conn, now, actor, "incident.reopened", "incident", incident_id, {"reason": reason}
        )
        emit(
            conn,
            topics.INCIDENTS,
            str(incident_id),
            {"type": "incident.reopened", "incident_id": incident_id},
            now,
        )

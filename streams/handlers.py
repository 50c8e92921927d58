"""What each agent does with one event: load state, ask the core, write the decision.

Every handler runs in one transaction that also claims the event id, so a redelivered
event changes nothing. Agents (streams/agents.py) only move events to these functions.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, select, update

from alerts.channels.base import Channel, Message
from alerts.ledger import send_once
from alerts.render import crew_assignment_text
from pingan.assignments import ACTIVE_STATES, AssignmentState
from pingan.crews import Crew, choose_crews
from pingan.incidents import (
    AttachTo,
    IncidentStatus,
    NoPlaybook,
    OpenIncident,
    OpenNew,
    ReportFacts,
    decide_for_report,
    status_after_crew_change,
)
from pingan.store import Store, as_utc, claim_event, emit, record_audit
from pingan.store.schema import (
    assignments,
    crews,
    incident_history,
    incidents,
    processed_events,
    reports,
)
from playbooks.matcher import PlaybookIndex
from playbooks.model import Playbook
from streams import topics

log = logging.getLogger("pingan.streams")
SYSTEM = "system"


class BadEvent(ValueError):
    """An event without the fields its type needs. Logged and skipped, never retried."""


def reject_event(store: Store, consumer: str, event: Any, reason: str, now: datetime) -> None:
    """Claim a malformed event so it is audited once and never redelivered."""
    event_id = event.get("event_id") if isinstance(event, dict) else None
    if not isinstance(event_id, str):
        return
    with store.transaction() as conn:
        if claim_event(conn, consumer, event_id, now):
            record_audit(
                conn,
                now,
                SYSTEM,
                "event.rejected",
                "event",
                event_id,
                {"consumer": consumer, "reason": reason},
            )


def _field(event: dict[str, Any], name: str) -> Any:
    if name not in event:
        raise BadEvent(f"event {event.get('event_id', '?')} has no {name!r}")
    return event[name]


def set_incident_status(
    conn: Connection, incident_id: int, old: str | None, new: str, reason: str, now: datetime
) -> None:
    values: dict[str, Any] = {"status": new, "updated_at": now}
    if new == IncidentStatus.RESOLVED:
        values["resolved_at"] = now
    conn.execute(update(incidents).where(incidents.c.id == incident_id).values(**values))
    conn.execute(
        incident_history.insert().values(
            incident_id=incident_id, at=now, from_status=old, to_status=new, reason=reason
        )
    )


def _open_incidents(conn: Connection, category: str) -> list[OpenIncident]:
    last_report = (
        select(reports.c.incident_id, func.max(reports.c.received_at).label("last_at"))
        .group_by(reports.c.incident_id)
        .subquery()
    )
    rows = conn.execute(
        select(incidents, last_report.c.last_at)
        .join(last_report, last_report.c.incident_id == incidents.c.id)
        .where(incidents.c.category == category, incidents.c.status != IncidentStatus.RESOLVED)
    ).all()
    out = []
    for row in rows:
        correlation = row.playbook_snapshot["correlation"]
        out.append(
            OpenIncident(
                id=row.id,
                category=row.category,
                lat=row.lat,
                lon=row.lon,
                last_report_at=as_utc(row.last_at),  # type: ignore[arg-type]
                correlation_radius_m=correlation["radius_m"],
                correlation_window_min=correlation["window_min"],
            )
        )
    return out


def handle_report_accepted(
    store: Store, index: PlaybookIndex, event: dict[str, Any], now: datetime
) -> None:
    report_id = int(_field(event, "report_id"))
    with store.transaction() as conn:
        if not claim_event(conn, "incidents", _field(event, "event_id"), now):
            return
        report = conn.execute(select(reports).where(reports.c.id == report_id)).first()
        if report is None:
            raise BadEvent(f"report {report_id} does not exist")
        if report.incident_id is not None:
            return
        facts = ReportFacts(
            report.id,
            report.service_code,
            report.lat,
            report.lon,
            as_utc(report.received_at),  # type: ignore[arg-type]
        )
        decision = decide_for_report(facts, _open_incidents(conn, facts.category), index)
        match decision:
            case AttachTo(incident_id=incident_id, distance_m=dist):
                conn.execute(
                    update(reports).where(reports.c.id == report_id).values(incident_id=incident_id)
                )
                conn.execute(
                    update(incidents).where(incidents.c.id == incident_id).values(updated_at=now)
                )
                record_audit(
                    conn,
                    now,
                    SYSTEM,
                    "report.attached",
                    "incident",
                    incident_id,
                    {"report_id": report_id, "distance_m": round(dist, 1)},
                )
                log.info(
                    "report attached report=%s incident=%s distance_m=%.0f",
                    report_id,
                    incident_id,
                    dist,
                )
            case OpenNew(playbook=playbook, level=level):
                incident_id = _open_incident(conn, facts, playbook, level, now)
                conn.execute(
                    update(reports).where(reports.c.id == report_id).values(incident_id=incident_id)
                )
                emit(
                    conn,
                    topics.INCIDENTS,
                    str(incident_id),
                    {"type": "incident.opened", "incident_id": incident_id},
                    now,
                )
                log.info(
                    "incident opened incident=%s playbook=%s report=%s",
                    incident_id,
                    playbook.id,
                    report_id,
                )
            case NoPlaybook(reason=reason):
                record_audit(
                    conn, now, SYSTEM, "report.unmatched", "report", report_id, {"reason": reason}
                )
                log.warning("report unmatched report=%s reason=%s", report_id, reason)


def _open_incident(
    conn: Connection, report: ReportFacts, playbook: Playbook, level: str, now: datetime
) -> int:
    incident_id = conn.execute(
        incidents.insert().values(
            category=report.category,
            status=IncidentStatus.OPEN,
            level=level,
            playbook_id=playbook.id,
            playbook_version=playbook.version,
            playbook_snapshot=playbook.model_dump(mode="json"),
            lat=report.lat,
            lon=report.lon,
            unstaffed=0,
            opened_at=now,
            updated_at=now,
        )
    ).inserted_primary_key[0]
    conn.execute(
        incident_history.insert().values(
            incident_id=incident_id,
            at=now,
            from_status=None,
            to_status=IncidentStatus.OPEN,
            reason=f"report {report.id} matched playbook {playbook.id} v{playbook.version}",
        )
    )
    record_audit(
        conn,
        now,
        SYSTEM,
        "incident.opened",
        "incident",
        incident_id,
        {"playbook": playbook.id, "version": playbook.version, "level": level},
    )
    return int(incident_id)


def _crew_from_row(row: Any) -> Crew:
    return Crew(
        id=row.id,
        name=row.name,
        leader=row.leader,
        phone=row.phone,
        skills=tuple(row.skills),
        unit=row.unit,
        home_lat=row.home_lat,
        home_lon=row.home_lon,
        capacity=row.capacity,
    )


def handle_incident_event(store: Store, event: dict[str, Any], now: datetime) -> None:
    """Dispatch crews for a newly opened incident; other incident events need nothing
    from dispatch yet but are claimed all the same."""
    with store.transaction() as conn:
        if not claim_event(conn, "dispatch", _field(event, "event_id"), now):
            return
        if event.get("type") != "incident.opened":
            return
        incident_id = int(_field(event, "incident_id"))
        incident = conn.execute(select(incidents).where(incidents.c.id == incident_id)).first()
        if incident is None:
            raise BadEvent(f"incident {incident_id} does not exist")
        if incident.status == IncidentStatus.RESOLVED:
            return
        playbook = Playbook.model_validate(incident.playbook_snapshot)
        roster = [_crew_from_row(r) for r in conn.execute(select(crews)).all()]
        load = dict(
            conn.execute(
                select(assignments.c.crew_id, func.count())
                .where(assignments.c.state.in_([s.value for s in ACTIVE_STATES]))
                .group_by(assignments.c.crew_id)
            ).all()
        )
        already = frozenset(
            conn.execute(
                select(assignments.c.crew_id).where(assignments.c.incident_id == incident_id)
            ).scalars()
        )
        short: list[str] = []
        for action in playbook.actions_at(incident.level).dispatch:
            choices = choose_crews(
                action.skill, action.crews, incident.lat, incident.lon, roster, load, already
            )
            for choice in choices:
                assignment_id = conn.execute(
                    assignments.insert().values(
                        incident_id=incident_id,
                        crew_id=choice.crew.id,
                        skill=action.skill,
                        state=AssignmentState.ASSIGNED,
                        why=choice.why,
                        ack_due_at=now + timedelta(minutes=action.ack_within_min),
                        created_at=now,
                        updated_at=now,
                    )
                ).inserted_primary_key[0]
                load[choice.crew.id] = load.get(choice.crew.id, 0) + 1
                record_audit(
                    conn,
                    now,
                    SYSTEM,
                    "assignment.created",
                    "assignment",
                    assignment_id,
                    {"incident_id": incident_id, "crew": choice.crew.id, "why": choice.why},
                )
                emit(
                    conn,
                    topics.NOTIFICATIONS,
                    str(incident_id),
                    {"type": "crew.assignment", "assignment_id": assignment_id},
                    now,
                )
                log.info(
                    "crew assigned incident=%s assignment=%s crew=%s",
                    incident_id,
                    assignment_id,
                    choice.crew.id,
                )
            if len(choices) < action.crews:
                short.append(f"{action.crews - len(choices)} x {action.skill}")
        if short:
            conn.execute(update(incidents).where(incidents.c.id == incident_id).values(unstaffed=1))
            record_audit(
                conn, now, SYSTEM, "incident.unstaffed", "incident", incident_id, {"missing": short}
            )
            log.warning("incident unstaffed incident=%s missing=%s", incident_id, short)
        _follow_assignments(conn, incident_id, incident.status, "crews assigned", now)


def _follow_assignments(
    conn: Connection, incident_id: int, old: str, reason: str, now: datetime
) -> str:
    states = (
        conn.execute(select(assignments.c.state).where(assignments.c.incident_id == incident_id))
        .scalars()
        .all()
    )
    new = status_after_crew_change(states)
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


async def handle_crew_notification(
    store: Store,
    channel: Channel,
    event: dict[str, Any],
    now: datetime,
    retry_delays: tuple[float, ...] = (1.0, 2.0, 4.0),
) -> None:
    event_id = _field(event, "event_id")
    assignment_id = int(_field(event, "assignment_id"))
    with store.read() as conn:
        if conn.execute(
            select(processed_events.c.event_id).where(
                processed_events.c.event_id == event_id,
                processed_events.c.consumer == "notify",
            )
        ).first():
            return
        row = conn.execute(
            select(
                assignments,
                crews.c.phone,
                incidents.c.category,
                incidents.c.lat,
                incidents.c.lon,
                incidents.c.playbook_snapshot,
                incidents.c.level,
            )
            .join(crews, crews.c.id == assignments.c.crew_id)
            .join(incidents, incidents.c.id == assignments.c.incident_id)
            .where(assignments.c.id == assignment_id)
        ).first()
        if row is None:
            raise BadEvent(f"assignment {assignment_id} does not exist")
        first_report = conn.execute(
            select(reports.c.address, reports.c.description)
            .where(reports.c.incident_id == row.incident_id)
            .order_by(reports.c.id)
            .limit(1)
        ).first()
    playbook = Playbook.model_validate(row.playbook_snapshot)
    action = next(
        (a for a in playbook.actions_at(row.level).dispatch if a.skill == row.skill), None
    )
    body = crew_assignment_text(
        assignment_id,
        row.category,
        row.lat,
        row.lon,
        first_report.address if first_report else None,
        first_report.description if first_report else "",
        action.ack_within_min if action else 10,
        action.checklist if action else (),
    )
    message = Message(f"assignment:{assignment_id}", row.phone, body)
    outcome = await send_once(store, channel, message, now)
    for delay in retry_delays:
        if outcome.status != "retry":
            break
        await asyncio.sleep(delay)
        outcome = await send_once(store, channel, message, now)
    with store.transaction() as conn:
        if claim_event(conn, "notify", event_id, now):
            record_audit(
                conn,
                now,
                SYSTEM,
                f"crew.notify.{outcome.status}",
                "assignment",
                assignment_id,
                {
                    "channel": channel.name,
                    "provider_id": outcome.provider_id,
                    "error": outcome.error,
                },
            )


def handle_crew_event(store: Store, event: dict[str, Any], now: datetime) -> None:
    incident_id = int(_field(event, "incident_id"))
    kind = _field(event, "type")
    with store.transaction() as conn:
        if not claim_event(conn, "incident-progress", _field(event, "event_id"), now):
            return
        status = conn.execute(
            select(incidents.c.status).where(incidents.c.id == incident_id)
        ).scalar_one_or_none()
        if status is None:
            raise BadEvent(f"incident {incident_id} does not exist")
        new = _follow_assignments(
            conn, incident_id, status, f"{kind} (assignment {event.get('assignment_id')})", now
        )
        if new == IncidentStatus.RESOLVED and status != new:
            log.info("incident resolved incident=%s", incident_id)

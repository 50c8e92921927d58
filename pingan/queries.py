"""Read models for the API: incidents with their reports, assignments and history."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, select

from pingan.labels import assignment_labels, crew_label, incident_labels
from pingan.privacy import mask_phone
from pingan.store import as_utc
from pingan.store.schema import (
    assignments,
    citizen_warnings,
    components,
    crews,
    incident_history,
    incidents,
    outbox,
    processed_events,
    reports,
    road_segments,
    sends,
    warning_messages,
)
from pingan.vocabulary import AssignmentState, IncidentStatus, skill_label

LAG_HORIZON = timedelta(days=1)  # events older than this are the relay's sweep's business


def _iso(value: datetime | None) -> str | None:
    return as_utc(value).isoformat() if value else None  # type: ignore[union-attr]


def _incident_summary(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "status": row.status,
        "category": row.category,
        "level": row.level,
        "playbook": {"id": row.playbook_id, "version": row.playbook_version},
        "location": {"lat": row.lat, "long": row.lon},
        "scope": row.scope,
        "district": row.district,
        "unstaffed": bool(row.unstaffed),
        "opened_at": _iso(row.opened_at),
        "updated_at": _iso(row.updated_at),
        "resolved_at": _iso(row.resolved_at),
        "labels": incident_labels(row.category, row.district, row.level),
    }


def list_incidents(conn: Connection, status: str | None = None, limit: int = 500) -> list[dict]:
    query = select(incidents).order_by(incidents.c.id.desc()).limit(limit)
    if status:
        query = query.where(incidents.c.status == status)
    return [_incident_summary(r) for r in conn.execute(query).all()]


def segment_names(conn: Connection, ids: Iterable[str | None]) -> dict[str, str]:
    """Road segment id -> its name (人民路), for those of `ids` the roster names."""
    wanted = {i for i in ids if i}
    if not wanted:
        return {}
    found = select(road_segments.c.id, road_segments.c.name).where(road_segments.c.id.in_(wanted))
    return {r.id: r.name for r in conn.execute(found)}


def report_view(row: Any, reveal: bool = False) -> dict[str, Any]:
    """A report as the API shows it: the caller's phone masked, unless a dispatcher
    (who may need to call back) is asking."""
    contact = dict(row.contact or {})
    if "phone" in contact and not reveal:
        contact["phone"] = mask_phone(contact["phone"])
    return {
        "id": row.id,
        "service_request_id": str(row.id),
        "source": row.source,
        "service_code": row.service_code,
        "location": {"lat": row.lat, "long": row.lon},
        "address": row.address,
        "description": row.description,
        "received_at": _iso(row.received_at),
        "contact": contact,
        "incident_id": row.incident_id,
    }


def get_incident(conn: Connection, incident_id: int, reveal: bool = False) -> dict[str, Any] | None:
    row = conn.execute(select(incidents).where(incidents.c.id == incident_id)).first()
    if row is None:
        return None
    out = _incident_summary(row)
    name = (row.playbook_snapshot or {}).get("name") or {}
    out["labels"]["playbook"] = {
        "zh": name.get("zh", row.playbook_id),
        "en": name.get("en", row.playbook_id),
    }
    out["held"] = bool(row.held)
    out["reports"] = [
        report_view(r, reveal)
        for r in conn.execute(
            select(reports).where(reports.c.incident_id == incident_id).order_by(reports.c.id)
        ).all()
    ]
    rows = conn.execute(
        select(assignments, crews.c.name, crews.c.name_en)
        .join(crews, crews.c.id == assignments.c.crew_id)
        .where(assignments.c.incident_id == incident_id)
        .order_by(assignments.c.id)
    ).all()
    names = segment_names(conn, [(a.reason or {}).get("segment") for a in rows])
    out["assignments"] = [
        {
            "id": a.id,
            "crew": {"id": a.crew_id, "name": a.name},
            "skill": a.skill,
            "state": a.state,
            "why": a.why,
            "reason": a.reason,
            "labels": assignment_labels(
                crew_label(a.name, a.name_en), a.state, a.reason, a.why, names
            ),
            "ack_due_at": _iso(a.ack_due_at),
            "created_at": _iso(a.created_at),
            "acknowledged_at": _iso(a.acknowledged_at),
            "done_at": _iso(a.done_at),
        }
        for a in rows
    ]
    out["history"] = [
        {"at": _iso(h.at), "from": h.from_status, "to": h.to_status, "reason": h.reason}
        for h in conn.execute(
            select(incident_history)
            .where(incident_history.c.incident_id == incident_id)
            .order_by(incident_history.c.id)
        ).all()
    ]
    return out


def get_report(conn: Connection, report_id: int) -> Any | None:
    return conn.execute(select(reports).where(reports.c.id == report_id)).first()


@dataclass(frozen=True)
class ReportSearch:
    """Which reports a search asks for; every part is applied in SQL, before the limit.
    A report is closed when its incident is resolved, open otherwise (no incident yet
    included), as Open311 shows it."""

    ids: tuple[int, ...] = ()  # these reports only, whatever the other filters say
    statuses: frozenset[str] = frozenset()  # open, closed; empty: both
    service_codes: tuple[str, ...] = ()  # empty: all
    start: datetime | None = None  # received at or after
    end: datetime | None = None  # received at or before


def find_reports(conn: Connection, search: ReportSearch, limit: int) -> list[Any]:
    """The newest `limit` reports that match, newest first."""
    query = select(reports).order_by(reports.c.id.desc()).limit(limit)
    if search.ids:
        return list(conn.execute(query.where(reports.c.id.in_(search.ids))).all())
    if search.start is not None:
        query = query.where(reports.c.received_at >= search.start)
    if search.end is not None:
        query = query.where(reports.c.received_at <= search.end)
    if search.service_codes:
        query = query.where(reports.c.service_code.in_(search.service_codes))
    if search.statuses and search.statuses != {"open", "closed"}:
        resolved = (
            select(incidents.c.id)
            .where(
                incidents.c.id == reports.c.incident_id,
                incidents.c.status == IncidentStatus.RESOLVED,
            )
            .exists()
        )
        query = query.where(resolved if "closed" in search.statuses else ~resolved)
    return list(conn.execute(query).all())


def warnings_in_force(conn: Connection, now: datetime) -> list[dict[str, Any]]:
    """The latest message of every warning not cancelled, superseded or expired."""
    rows = conn.execute(select(warning_messages).order_by(warning_messages.c.id)).all()
    latest: dict[str, Any] = {}
    ended: set[str] = set()
    for row in rows:
        latest[row.warning_id] = row
        if row.msg_type == "Cancel":
            ended.add(row.warning_id)
        ended.update(row.references or ())
    out = []
    for warning_id, row in latest.items():
        expires = as_utc(row.expires_at)
        if warning_id in ended or row.msg_type == "Cancel" or (expires and expires <= now):
            continue
        out.append(
            {
                "id": warning_id,
                "msg_type": row.msg_type,
                "event": row.event,
                "level": row.level,
                "districts": row.districts,
                "headline": row.headline,
                "expires": _iso(row.expires_at),
                "received_at": _iso(row.received_at),
                "source": row.source,
            }
        )
    return out


def warning_areas(conn: Connection, now: datetime, limit: int = 100) -> list[dict[str, Any]]:
    """What is under a warning now, for the map: official warnings in force (by
    district) and citizen warnings sent, not cancelled, corrected or expired (by the
    polygon or circle they were targeted by, else by district)."""
    official = [
        {
            "kind": "official",
            "id": w["id"],
            "event": w["event"],
            "level": w["level"],
            "districts": w["districts"],
            "area": None,
            "headline": w["headline"],
        }
        for w in warnings_in_force(conn, now)
    ]
    corrected = select(citizen_warnings.c.corrects).where(citizen_warnings.c.corrects.is_not(None))
    rows = conn.execute(
        select(citizen_warnings)
        .where(
            citizen_warnings.c.status == "sent",
            citizen_warnings.c.msg_type != "Cancel",
            citizen_warnings.c.id.not_in(corrected),
            citizen_warnings.c.expires_at.is_(None) | (citizen_warnings.c.expires_at > now),
        )
        .order_by(citizen_warnings.c.id.desc())
        .limit(limit)
    ).all()
    citizen = [
        {
            "kind": "citizen",
            "id": str(r.id),
            "event": r.event,
            "level": r.level,
            "districts": r.districts,
            "area": r.area,
            "headline": r.text_zh[:80],
        }
        for r in rows
    ]
    return official + citizen


def component(conn: Connection, name: str) -> dict[str, Any] | None:
    row = conn.execute(select(components).where(components.c.name == name)).first()
    if row is None:
        return None
    return {"state": row.state, "detail": row.detail, "updated_at": _iso(row.updated_at)}


def crew_board(conn: Connection, now: datetime) -> list[dict[str, Any]]:
    """Each crew: on shift now, what it is doing, when it last answered."""
    from pingan.core.assignments import ACTIVE_STATES
    from pingan.store.crews import load_crews

    active = {}
    for row in conn.execute(
        select(assignments)
        .where(assignments.c.state.in_([s.value for s in ACTIVE_STATES]))
        .order_by(assignments.c.id)
    ):
        active.setdefault(row.crew_id, []).append(
            {"assignment": row.id, "incident_id": row.incident_id, "state": row.state}
        )
    last = dict(
        conn.execute(
            select(assignments.c.crew_id, func.max(assignments.c.updated_at))
            .where(assignments.c.state != AssignmentState.ASSIGNED)
            .group_by(assignments.c.crew_id)
        ).all()
    )
    return [
        {
            "id": c.id,
            "name": c.name,
            "unit": c.unit,
            "skills": list(c.skills),
            "on_shift": c.on_shift(now),
            "capacity": c.capacity,
            "home": [c.home_lat, c.home_lon],  # the crew's base; no live position is kept
            "shift": f"{c.shift.start:%H:%M}-{c.shift.end:%H:%M}",
            "current": active.get(c.id, []),
            "last_contact": _iso(last.get(c.id)),
            "labels": {
                "name": crew_label(c.name, c.name_en),
                "skills": [skill_label(s) for s in c.skills],
            },
        }
        for c in load_crews(conn)
        if c.skills
    ]


def assignment_facts(conn: Connection, start: datetime, end: datetime) -> list[Any]:
    from pingan.kpis import AssignmentFacts

    rows = conn.execute(
        select(
            assignments,
            crews.c.unit,
            incidents.c.category,
            incidents.c.opened_at.label("opened"),
            incidents.c.resolved_at.label("resolved"),
        )
        .join(crews, crews.c.id == assignments.c.crew_id)
        .join(incidents, incidents.c.id == assignments.c.incident_id)
        .where(assignments.c.created_at >= start, assignments.c.created_at < end)
    ).all()
    return [
        AssignmentFacts(
            category=r.category,
            unit=r.unit,
            crew=r.crew_id,
            created_at=as_utc(r.created_at),
            ack_due_at=as_utc(r.ack_due_at),
            acknowledged_at=as_utc(r.acknowledged_at),
            on_scene_at=as_utc(r.on_scene_at),
            done_at=as_utc(r.done_at),
            incident_opened_at=as_utc(r.opened),
            incident_resolved_at=as_utc(r.resolved),
        )
        for r in rows
    ]


def first_report(conn: Connection, incident_id: int) -> Any | None:
    """The report that opened an incident: what crews read first."""
    return conn.execute(
        select(reports.c.address, reports.c.description)
        .where(reports.c.incident_id == incident_id)
        .order_by(reports.c.id)
        .limit(1)
    ).first()


def backlog(conn: Connection, now: datetime) -> dict[str, dict[str, Any]]:
    """What waits, and since when, as a dispatcher needs to see it in a storm: events
    not yet handed to the broker, events the worker has not processed yet (its lag),
    reports accepted but not yet on an incident (those awaiting review aside), and
    messages still pending (how many have failed at least once: `retrying`)."""

    def measured(count: int, oldest: datetime | None) -> dict[str, Any]:
        age = (now - as_utc(oldest)).total_seconds() if oldest else 0.0  # type: ignore[operator]
        return {"count": int(count), "oldest_age_s": round(max(age, 0.0), 1)}

    unpublished = conn.execute(
        select(func.count(), func.min(outbox.c.created_at)).where(outbox.c.published_at.is_(None))
    ).one()
    processed = (
        select(processed_events.c.event_id)
        .where(processed_events.c.event_id == outbox.c.event_id)
        .exists()
    )
    unprocessed = conn.execute(
        select(func.count(), func.min(outbox.c.created_at)).where(
            outbox.c.published_at >= now - LAG_HORIZON, ~processed
        )
    ).one()
    waiting = conn.execute(
        select(func.count(), func.min(reports.c.received_at)).where(
            reports.c.incident_id.is_(None), reports.c.review_reason.is_(None)
        )
    ).one()
    pending = conn.execute(
        select(
            func.count(), func.min(sends.c.created_at), func.count().filter(sends.c.attempts > 0)
        ).where(sends.c.status == "pending")
    ).one()
    return {
        "outbox_unpublished": measured(*unpublished),
        "events_unprocessed": measured(*unprocessed),
        "reports_unlinked": measured(*waiting),
        # messages no provider has taken yet (alerts/pipeline.py), retrying or not
        "messages_pending": measured(*pending[:2]) | {"retrying": int(pending[2])},
    }

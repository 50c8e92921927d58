"""What each agent does with one event: load state, ask the core, write the decision.

Every handler runs in one transaction that also claims the event id, so a redelivered
event changes nothing. Agents (streams/app.py) only move events to these functions.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Text, bindparam, cast, func, select

from alerts.channels.base import Message
from alerts.pipeline import Outgoing, Sender, of_chunk, of_key, queue
from alerts.render import (
    CrewTask,
    citizen_received_text,
    citizen_resolved_text,
    crew_assignment_text,
    crew_reminder_text,
    staff_digest_text,
    staff_level_text,
)
from pingan.city import load_city
from pingan.core import topics
from pingan.core.dispatch import (
    Occasion,
)
from pingan.core.events import BadEvent, ClockTick, ReportReceived
from pingan.core.matching import match
from pingan.dispatch.requests import request_dispatch, restaffs_pending
from pingan.dispatch.staffing import (
    dispatch_for_level,
    follow_assignments,
    read_dispatch_ahead,
    restaffable_incidents,
)
from pingan.dispatch.timers import alert_staff
from pingan.intake.location import place_near
from pingan.intake.warnings import WarningInvalid, signal_from_event, threshold_from_event
from pingan.links import CrewLinks
from pingan.queries import first_report
from pingan.store import SYSTEM, Store, as_utc, claim_event, claim_events, emit, record_audit
from pingan.store.db import read_ahead, rows_read_ahead, scratch, take_read_ahead
from pingan.store.incidents import (
    apply_decisions,
    linked_in_transaction,
    load_open_incidents,
    load_report_candidates,
    note_changes,
    read_candidates_ahead,
)
from pingan.store.schema import (
    assignments,
    crews,
    incident_warnings,
    incidents,
    reports,
    road_segments,
    staff_alerts,
)
from pingan.vocabulary import IncidentStatus
from playbooks.index import PlaybookIndex
from playbooks.model import WarningTrigger
from playbooks.snapshot import playbook_from_snapshot

log = logging.getLogger("pingan.streams")
FIRST_CHANNEL = "sms"  # every person's message starts on SMS (alerts/retry.py CHAINS)
# The consumers that take their events in batches: each name is the scope its events
# are claimed in (processed_events.consumer), by claim_event and by a batch's
# claim_events alike.
INCIDENTS = "incidents"
WEATHER = "weather"
DISPATCH = "dispatch"
PROGRESS = "incident-progress"
NOTIFY = "notify"


# Built once (see pingan/store/incidents.py): these run for every event of a storm.
_REPORT = select(reports).where(reports.c.id == bindparam("report_id"))
_REPORTS = select(reports).where(reports.c.id.in_(bindparam("ids", expanding=True)))
_REPORT_AHEAD = "report"
_FIRST_UNIT = (
    select(crews.c.unit)
    .join(assignments, assignments.c.crew_id == crews.c.id)
    .where(assignments.c.incident_id == bindparam("incident_id"))
    .order_by(assignments.c.id)
)
_ASSIGNMENT_TO_TELL = (
    select(
        assignments,
        crews.c.phone,
        crews.c.segments,
        incidents.c.category,
        incidents.c.scope,
        incidents.c.district,
        incidents.c.lat,
        incidents.c.lon,
        cast(incidents.c.playbook_snapshot, Text).label("playbook_snapshot"),
    )
    .join(crews, crews.c.id == assignments.c.crew_id)
    .join(incidents, incidents.c.id == assignments.c.incident_id)
    .where(assignments.c.id == bindparam("assignment_id"))
)


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


# Each handler below comes in two forms: `apply_*` does the work inside the caller's
# transaction (so the agents can apply a batch of events in one), `handle_*` is the
# same for one event in a transaction of its own.
Apply = Callable[[Connection, dict[str, Any], datetime], None]


def in_transaction(store: Store, apply: Apply, event: dict[str, Any], now: datetime) -> None:
    with store.transaction() as conn:
        apply(conn, event, now)


def apply_batch(
    store: Store, consumer: str, apply: Apply, events: Sequence[dict[str, Any]], now: datetime
) -> None:
    """Several events of one partition in one transaction, in order: one write lock, one
    statement claiming them all and one commit instead of one each. Any failure undoes
    the whole batch (the caller then takes the events one at a time, so a bad one cannot
    hold back the rest)."""
    with store.transaction() as conn:
        ids = [e["event_id"] for e in events if isinstance(e.get("event_id"), str)]
        claim_events(conn, consumer, ids, now)
        _read_batch_ahead(conn, consumer, events)
        for event in events:
            apply(conn, event, now)


# The dispatch events that staff an incident (dispatch_for_level).
_STAFFING = frozenset(
    {
        "incident.opened",
        "incident.upgraded",
        "incident.dispatch",
        "incident.reopened",
        "incident.restaff",
    }
)


def _read_batch_ahead(conn: Connection, consumer: str, events: Sequence[dict[str, Any]]) -> None:
    """Read for the whole batch, in a statement or three, what each of its events would
    read for itself: a storm's reports, the incidents to staff. A malformed event is
    left to its handler to refuse."""
    if consumer == INCIDENTS:
        ids = _ids(events, "report_id")
        if ids:
            rows = conn.execute(_REPORTS, {"ids": ids})
            read_ahead(conn, _REPORT_AHEAD, {r.id: r for r in rows})
    elif consumer == DISPATCH:
        staffing = [e for e in events if e.get("type") in _STAFFING]
        read_dispatch_ahead(conn, _ids(staffing, "incident_id"))


def _ids(events: Sequence[dict[str, Any]], field: str) -> list[int]:
    found = []
    for event in events:
        try:
            found.append(int(event[field]))
        except (KeyError, TypeError, ValueError):
            continue
    return sorted(set(found))


def handle_report_accepted(
    store: Store, index: PlaybookIndex, event: dict[str, Any], now: datetime
) -> None:
    with store.transaction() as conn:
        apply_report_accepted(conn, index, event, now)


def apply_report_accepted(
    conn: Connection, index: PlaybookIndex, event: dict[str, Any], now: datetime
) -> None:
    report_id = int(_field(event, "report_id"))
    if not claim_event(conn, INCIDENTS, _field(event, "event_id"), now):
        return
    report = take_read_ahead(conn, _REPORT_AHEAD, report_id)
    if report is None:
        report = conn.execute(_REPORT, {"report_id": report_id}).first()
    if report is None:
        raise BadEvent(f"report {report_id} does not exist")
    if report.incident_id is not None or linked_in_transaction(conn, report_id):
        return
    received = _received(report)
    if not scratch(conn).get(_CANDIDATES_READ):  # the batch's first report: all at once
        scratch(conn)[_CANDIDATES_READ] = True
        others = rows_read_ahead(conn, _REPORT_AHEAD).values()
        wanted = [_received(r) for r in (report, *others) if r.incident_id is None]
        read_candidates_ahead(conn, [(r, _playbook_ids(index, r)) for r in wanted])
    candidates = load_report_candidates(conn, received, _playbook_ids(index, received))
    decisions = match(received, candidates, index, now)
    apply_decisions(conn, received, decisions, now)
    note_changes(conn, decisions, candidates)


_CANDIDATES_READ = "candidates_read_ahead"


def _received(report: Any) -> ReportReceived:
    return ReportReceived(
        report.id, report.service_code, report.lat, report.lon, as_utc(report.received_at)
    )  # type: ignore[arg-type]


def _playbook_ids(index: PlaybookIndex, report: ReportReceived) -> list[str]:
    playbook = index.for_report(report.category)
    return [playbook.id] if playbook else []


def handle_weather_event(
    store: Store, index: PlaybookIndex, event: dict[str, Any], now: datetime
) -> None:
    with store.transaction() as conn:
        apply_weather_event(conn, index, event, now)


def apply_weather_event(
    conn: Connection, index: PlaybookIndex, event: dict[str, Any], now: datetime
) -> None:
    """An official warning (Alert/Update/Cancel) or a threshold crossed or cleared."""
    try:
        kind = _field(event, "type")
        if kind == "warning.received":
            weather = signal_from_event(_field(event, "warning"))
        elif kind == "threshold.changed":
            weather = threshold_from_event(_field(event, "threshold"))
        else:
            raise BadEvent(f"event {event.get('event_id')} has unknown type {kind!r}")
    except WarningInvalid as exc:
        raise BadEvent(str(exc)) from None
    if not claim_event(conn, WEATHER, _field(event, "event_id"), now):
        return
    # Cancels and Updates may touch any incident that follows the warnings they
    # reference, so those read every open incident; the rest only their candidates.
    apply_decisions(conn, weather, match(weather, load_open_incidents(conn), index, now), now)


def handle_clock_tick(store: Store, index: PlaybookIndex, now: datetime) -> int:
    """Expire warnings whose time has passed, and ask again for crews where an
    unstaffed incident could now be staffed. Returns decisions applied."""
    with store.read() as conn:  # the planning needs no write lock
        wanted = restaffable_incidents(conn, now, skip=restaffs_pending(conn))
    with store.transaction() as conn:
        for incident_id in wanted:
            request_dispatch(conn, incident_id, Occasion.RESTAFF, now)
        due = conn.execute(
            select(func.count())
            .select_from(incident_warnings)
            .where(
                incident_warnings.c.state == "active",
                incident_warnings.c.expires_at <= now,
            )
        ).scalar_one()
        if not due:
            return 0
        decisions = match(ClockTick(now), load_open_incidents(conn), index, now)
        apply_decisions(conn, ClockTick(now), decisions, now)
        return len(decisions)


def handle_incident_event(store: Store, event: dict[str, Any], now: datetime) -> None:
    in_transaction(store, apply_incident_event, event, now)


def apply_incident_event(conn: Connection, event: dict[str, Any], now: datetime) -> None:
    """Dispatch crews when an incident opens, is reopened, its level rises or crews
    became free for it; other incident events need nothing from dispatch yet but are
    claimed all the same."""
    if not claim_event(conn, DISPATCH, _field(event, "event_id"), now):
        return
    kind = event.get("type")
    if kind == "incident.resolved":
        _tell_reporters(conn, int(_field(event, "incident_id")), event.get("outcome"), now)
    elif kind == "incident.reopened":
        dispatch_for_level(conn, int(_field(event, "incident_id")), now, Occasion.REOPENED)
    elif kind == "incident.dispatch":
        occasion = _occasion(_field(event, "occasion"))
        dispatch_for_level(conn, int(_field(event, "incident_id")), now, occasion)
    elif kind == "incident.restaff":  # the request's earlier form, still in flight
        dispatch_for_level(conn, int(_field(event, "incident_id")), now, Occasion.RESTAFF)
    elif kind in ("incident.opened", "incident.upgraded"):
        incident_id = int(_field(event, "incident_id"))
        # What staff and citizens hear depends on the incident's level and playbook,
        # which dispatch does not change: the row dispatch read serves both.
        incident = dispatch_for_level(conn, incident_id, now)
        _tell_staff(conn, incident, now)
        _warn_citizens(conn, incident, now)


def _occasion(raw: Any) -> Occasion:
    try:
        return Occasion(raw)
    except ValueError:
        raise BadEvent(f"occasion {raw!r} is not one of {[o.value for o in Occasion]}") from None


def _tell_staff(conn: Connection, incident: Any, now: datetime) -> None:
    """The level's notify_staff roles hear that the response started (in their digest).
    A supervisor is the one over the crews sent; with none sent, the duty leader."""
    incident_id = incident.id
    notices = playbook_from_snapshot(incident.playbook_snapshot).actions_at(incident.level)
    if not notices.notify_staff:
        return
    unit = conn.execute(_FIRST_UNIT, {"incident_id": incident_id}).scalar()
    for notice in notices.notify_staff:
        text = staff_level_text(incident_id, incident.category, incident.level, notice.message)
        alert_staff(conn, notice.role, unit or "", text, incident_id, now)


def _warn_citizens(conn: Connection, incident: Any, now: datetime) -> None:
    """The level's notify_citizens actions become warning drafts (or auto-sends)."""
    from alerts.citizen_warnings import draft_for_incident

    incident_id = incident.id
    if incident.scope != "district" or not incident.district:
        return
    playbook = playbook_from_snapshot(incident.playbook_snapshot)
    for notice in playbook.actions_at(incident.level).notify_citizens:
        districts = (
            list(load_city().districts) if notice.districts == "all" else [incident.district]
        )
        event = next(
            (t.event for t in playbook.triggers if isinstance(t, WarningTrigger)), incident.category
        )
        draft_for_incident(
            conn,
            incident_id,
            event,
            incident.level,
            districts,
            notice.template,
            notice.channels,
            notice.approval,
            now,
        )


def _tell_reporters(conn: Connection, incident_id: int, outcome: str | None, now: datetime) -> None:
    """Close the loop: every reporter who left a number hears that it is done (and
    what was done, when a dispatcher said)."""
    for report_id, district in conn.execute(
        select(reports.c.id, reports.c.district).where(
            reports.c.incident_id == incident_id, reports.c.caller_hash.is_not(None)
        )
    ).all():
        emit(
            conn,
            topics.NOTIFICATIONS,
            district or "unknown",
            {"type": "citizen.resolved", "report_id": report_id}
            | ({"outcome": outcome} if outcome else {}),
            now,
        )


def _crew_message(
    conn: Connection, assignment_id: int, links: CrewLinks | None, reminder: bool = False
) -> Message:
    row = assignment_to_tell(conn, assignment_id)
    link = links.url(assignment_id, row.crew_id, as_utc(row.created_at)) if links else None  # type: ignore[arg-type]
    if reminder:
        body = crew_reminder_text(assignment_id, row.category, link)
        return Message(f"assignment:{assignment_id}:reminder", row.phone, body)
    task = crew_task(conn, row, link)
    return Message(f"assignment:{assignment_id}", row.phone, crew_assignment_text(task))


def assignment_to_tell(conn: Connection, assignment_id: int) -> Any:
    """An assignment with its crew's phone and roads and its incident's facts."""
    row = conn.execute(_ASSIGNMENT_TO_TELL, {"assignment_id": assignment_id}).first()
    if row is None:
        raise BadEvent(f"assignment {assignment_id} does not exist")
    return row


def crew_task(conn: Connection, row: Any, link: str | None) -> CrewTask:
    """The task as a crew is told it (by SMS, or read out on a call), in words."""
    assignment_id = row.id
    first = first_report(conn, row.incident_id)
    action = playbook_from_snapshot(row.playbook_snapshot).dispatch_for(row.level, row.skill)
    district_wide = row.scope == "district"
    segments: tuple[tuple[str, str], ...] = ()
    if district_wide and row.segments:
        named = {
            s.id: (s.name, s.kind)
            for s in conn.execute(
                select(road_segments).where(road_segments.c.id.in_(list(row.segments)))
            )
        }
        segments = tuple(named[s] for s in row.segments if s in named)
    return CrewTask(
        assignment_id=assignment_id,
        category=row.category,
        level=row.level,
        place=_place_in_words(row, first.address if first else None),
        ack_within_min=action.ack_within_min if action else 10,
        segments=segments,
        targets=tuple(action.targets) if action else (),
        description=first.description if first else "",
        checklist=tuple(action.checklist) if action else (),
        link=link,
    )


# A landmark this close names a site for a crew ("人民路附近"); farther, the link's map.
LANDMARK_WITHIN_M = 500.0


def _place_in_words(incident: Any, address: str | None) -> str:
    """Where the crew goes, as words: the whole district, the reporter's address, the
    nearest landmark, else the map behind the link."""
    district = load_city().districts.get(incident.district or "")
    if incident.scope == "district":
        return f"{district.zh}全区" if district else "全市"
    if address:
        return address
    if incident.lat is not None and incident.lon is not None:
        near = place_near(incident.lat, incident.lon, LANDMARK_WITHIN_M)
        if near is not None:
            return f"{near.name}附近"
    return f"{district.zh}，位置见链接地图" if district else "位置见链接地图"


def _digest_message(conn: Connection, digest_key: str) -> Message | None:
    rows = conn.execute(
        select(staff_alerts)
        .where(staff_alerts.c.digest_key == digest_key)
        .order_by(staff_alerts.c.id)
    ).all()
    if not rows:
        return None
    return Message(
        f"digest:{digest_key}",
        rows[0].phone,
        staff_digest_text(rows[0].name, [r.text for r in rows]),
    )


def _citizen_message(
    conn: Connection, kind: str, report_id: int, outcome: str | None = None
) -> Message | None:
    report = conn.execute(_REPORT, {"report_id": report_id}).first()
    if report is None:
        raise BadEvent(f"report {report_id} does not exist")
    phone = (report.contact or {}).get("phone")
    if not phone:
        return None
    if kind == "citizen.received":
        body = citizen_received_text(report.id, report.service_code)
    else:
        what = outcome or "处理班组已完成现场处置"
        body = citizen_resolved_text(report.id, report.service_code, what)
    return Message(f"report:{report_id}:{kind}", phone, body)


def apply_notification(
    conn: Connection, event: dict[str, Any], now: datetime, links: CrewLinks | None = None
) -> str | None:
    """Render one message (to a crew, staff or a citizen) and queue it in the ledger,
    claiming the event in the same transaction: from then on the message is the
    pipeline's (alerts/pipeline.py), pending until a provider takes it, refuses it for
    good or a dispatcher gives up, retried across restarts. No agent waits on a
    provider: the sender sends it. Returns the message's key when one was queued."""
    event_id = _field(event, "event_id")
    kind = _field(event, "type")
    if not claim_event(conn, NOTIFY, event_id, now):
        return None
    if kind in ("crew.assignment", "crew.reminder"):
        entity, entity_id = "assignment", int(_field(event, "assignment_id"))
        message: Message | None = _crew_message(
            conn, entity_id, links, reminder=kind == "crew.reminder"
        )
    elif kind == "staff.digest":
        entity, entity_id = "staff", 0
        message = _digest_message(conn, str(_field(event, "digest_key")))
    elif kind in ("citizen.received", "citizen.resolved"):
        entity, entity_id = "report", int(_field(event, "report_id"))
        message = _citizen_message(conn, kind, entity_id, event.get("outcome"))
    else:
        raise BadEvent(f"event {event_id} has unknown type {kind!r}")
    if message is None:
        return None
    queue(conn, [Outgoing(message, FIRST_CHANNEL)], now)
    record_audit(
        conn,
        now,
        SYSTEM,
        f"{kind}.queued",
        entity,
        entity_id,
        {"channel": FIRST_CHANNEL},  # (not the key: a digest's names a phone)
    )
    return message.idempotency_key


async def handle_notification(
    store: Store,
    sender: Sender,
    event: dict[str, Any],
    now: datetime,
    links: CrewLinks | None = None,
) -> None:
    """apply_notification in a transaction of its own, then the sender is told (outside
    the worker it sends the message before this returns)."""
    with store.transaction() as conn:
        key = apply_notification(conn, event, now, links)
    if key is not None:
        await sender.queued(of_key(key), now)


def handle_crew_event(store: Store, event: dict[str, Any], now: datetime) -> None:
    in_transaction(store, apply_crew_event, event, now)


def apply_crew_event(conn: Connection, event: dict[str, Any], now: datetime) -> None:
    incident_id = int(_field(event, "incident_id"))
    kind = _field(event, "type")
    if not claim_event(conn, PROGRESS, _field(event, "event_id"), now):
        return
    status = conn.execute(
        select(incidents.c.status).where(incidents.c.id == incident_id)
    ).scalar_one_or_none()
    if status is None:
        raise BadEvent(f"incident {incident_id} does not exist")
    if status == IncidentStatus.RESOLVED:
        return
    if kind == "assignment.declined":
        dispatch_for_level(conn, incident_id, now)  # ask the next crew
        status = conn.execute(
            select(incidents.c.status).where(incidents.c.id == incident_id)
        ).scalar_one()
    follow_assignments(
        conn, incident_id, status, f"{kind} (assignment {event.get('assignment_id')})", now
    )


async def handle_send_chunk(
    store: Store, sender: Sender, event: dict[str, Any], now: datetime
) -> None:
    """Render one chunk of a citizen warning into the ledger and claim the event in the
    same transaction; the pipeline sends it (paced, retried until each is done)."""
    from alerts.fanout import render_chunk

    event_id = _field(event, "event_id")
    warning_id = int(_field(event, "warning_id"))
    from_id, to_id = int(_field(event, "from_id")), int(_field(event, "to_id"))
    with store.transaction() as conn:
        if not claim_event(conn, "sends", event_id, now):
            return
        items, skipped = render_chunk(conn, warning_id, from_id, to_id, sender.channels)
        queue(conn, items, now)
        # Also what tells the console's live view that delivery counts moved.
        record_audit(
            conn,
            now,
            SYSTEM,
            "citizen_warning.chunk_queued",
            "citizen_warning",
            warning_id,
            {"from_id": from_id, "queued": len(items), "no_channel": skipped},
        )
    log.info(
        "warning chunk queued warning=%s from=%s messages=%d no_channel=%d",
        warning_id,
        from_id,
        len(items),
        skipped,
    )
    await sender.queued(of_chunk(warning_id, from_id, to_id), now)

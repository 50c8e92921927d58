"""What each agent does with one event: load state, ask the core, write the decision.

Every handler runs in one transaction that also claims the event id, so a redelivered
event changes nothing. Agents (streams/app.py) only move events to these functions.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, select, update

from alerts.channels.base import Channel, Message
from alerts.ledger import send_once
from alerts.render import (
    citizen_received_text,
    citizen_resolved_text,
    crew_assignment_text,
    crew_reminder_text,
    staff_digest_text,
)
from pingan.assignments import ACTIVE_STATES, LIVE_STATES, AssignmentState
from pingan.city import load_city
from pingan.crews import Crew, CrewChoice, Override, choose_crews, crew_from_row
from pingan.incidents import IncidentStatus, status_after_crew_change
from pingan.links import CrewLinks
from pingan.queries import first_report, warnings_in_force
from pingan.store import Store, as_utc, claim_event, emit, new_event_id, record_audit
from pingan.store.schema import (
    assignments,
    crew_overrides,
    crews,
    incident_history,
    incident_warnings,
    incidents,
    outbox,
    processed_events,
    reports,
    staff_alerts,
)
from pingan.warnings import WarningInvalid, signal_from_event, threshold_from_event
from playbooks.matcher import ClockTick, PlaybookIndex, ReportReceived, match
from playbooks.model import DispatchAction, Playbook, WarningTrigger
from streams import topics
from streams.decisions import (
    SYSTEM,
    apply_decisions,
    load_open_incidents,
    set_incident_status,
)
from streams.timers import alert_staff, escalation_steps, schedule_escalation

log = logging.getLogger("pingan.streams")


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
        received = ReportReceived(
            report.id, report.service_code, report.lat, report.lon, as_utc(report.received_at)
        )  # type: ignore[arg-type]
        playbook = index.for_report(received.category)
        candidates = load_open_incidents(conn, [playbook.id] if playbook else [])
        apply_decisions(conn, received, match(received, candidates, index, now), now)


def handle_weather_event(
    store: Store, index: PlaybookIndex, event: dict[str, Any], now: datetime
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
    with store.transaction() as conn:
        if not claim_event(conn, "weather", _field(event, "event_id"), now):
            return
        # Cancels and Updates may touch any incident that follows the warnings they
        # reference, so those read every open incident; the rest only their candidates.
        apply_decisions(conn, weather, match(weather, load_open_incidents(conn), index, now), now)


def handle_clock_tick(store: Store, index: PlaybookIndex, now: datetime) -> int:
    """Expire warnings whose time has passed, and ask again for crews where an
    unstaffed incident could now be staffed. Returns decisions applied."""
    with store.transaction() as conn:
        asked = restaffs_pending(conn)
        for incident_id in restaffable_incidents(conn, now, skip=asked):
            # Dispatch happens in the incident's own partition, like every other change.
            emit(
                conn,
                topics.INCIDENTS,
                str(incident_id),
                {"type": "incident.restaff", "incident_id": incident_id},
                now,
                event_id=f"{RESTAFF_EVENT_PREFIX}{incident_id}-{new_event_id()}",
            )
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
    """Dispatch crews when an incident opens, is reopened, its level rises or crews
    became free for it; other incident events need nothing from dispatch yet but are
    claimed all the same."""
    with store.transaction() as conn:
        if not claim_event(conn, "dispatch", _field(event, "event_id"), now):
            return
        kind = event.get("type")
        if kind == "incident.resolved":
            _tell_reporters(conn, int(_field(event, "incident_id")), now)
        elif kind == "incident.reopened":
            dispatch_for_level(conn, int(_field(event, "incident_id")), now, fresh=True)
        elif kind == "incident.restaff":
            dispatch_for_level(conn, int(_field(event, "incident_id")), now, restaff=True)
        elif kind in ("incident.opened", "incident.upgraded"):
            incident_id = int(_field(event, "incident_id"))
            dispatch_for_level(conn, incident_id, now)
            _warn_citizens(conn, incident_id, now)


def _warn_citizens(conn: Connection, incident_id: int, now: datetime) -> None:
    """The level's notify_citizens actions become warning drafts (or auto-sends)."""
    from alerts.warnings import draft_for_incident

    incident = conn.execute(select(incidents).where(incidents.c.id == incident_id)).one()
    if incident.scope != "district" or not incident.district:
        return
    playbook = Playbook.model_validate(incident.playbook_snapshot)
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


def _tell_reporters(conn: Connection, incident_id: int, now: datetime) -> None:
    """Close the loop: every reporter who left a number hears that it is done."""
    for report_id, district in conn.execute(
        select(reports.c.id, reports.c.district).where(
            reports.c.incident_id == incident_id, reports.c.caller_hash.is_not(None)
        )
    ).all():
        emit(
            conn,
            topics.NOTIFICATIONS,
            district or "unknown",
            {"type": "citizen.resolved", "report_id": report_id},
            now,
        )


@dataclasses.dataclass(frozen=True)
class StaffingNeed:
    """One dispatch action of the incident's level that lacks crews, and whom the
    policy would send now (possibly fewer than wanted, possibly nobody)."""

    action: DispatchAction
    wanted: int
    choices: list[CrewChoice]


@dataclasses.dataclass(frozen=True)
class StaffingPlan:
    needs: list[StaffingNeed]
    segment: str | None
    roster: list[Crew]

    @property
    def short(self) -> list[str]:
        return [
            f"{n.wanted - len(n.choices)} x {n.action.skill}"
            for n in self.needs
            if len(n.choices) < n.wanted
        ]


def plan_staffing(
    conn: Connection, incident: Any, playbook: Playbook, now: datetime, fresh: bool = False
) -> StaffingPlan:
    """Read-only: which crews the incident's current level still needs, and whom the
    assignment policy would choose for them now."""
    roster = load_crews(conn)
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
    segment = conn.execute(
        select(reports.c.segment)
        .where(reports.c.incident_id == incident.id, reports.c.segment.is_not(None))
        .order_by(reports.c.id)
        .limit(1)
    ).scalar_one_or_none()
    mine = conn.execute(
        select(assignments.c.crew_id, assignments.c.skill, assignments.c.state).where(
            assignments.c.incident_id == incident.id
        )
    ).all()
    # A crew that declined or timed out is not asked again. After a reopen (`fresh`)
    # finished work does not count and the crews that did it may go again.
    counted = ACTIVE_STATES if fresh else LIVE_STATES
    if fresh:
        mine = [a for a in mine if a.state not in ("done", "cancelled")]
    on_incident = frozenset(a.crew_id for a in mine)
    needs: list[StaffingNeed] = []
    for action in playbook.actions_at(incident.level).dispatch:
        have = sum(1 for a in mine if a.skill == action.skill and a.state in counted)
        wanted = action.crews - have
        if wanted <= 0:
            continue
        choices = choose_crews(
            action.skill,
            wanted,
            incident.lat,
            incident.lon,
            roster,
            load,
            on_incident,
            action.equipment,
            segment,
            now,
            recent,
        )
        for choice in choices:  # a crew chosen for one action is busier for the next
            load[choice.crew.id] = load.get(choice.crew.id, 0) + 1
            on_incident |= {choice.crew.id}
        needs.append(StaffingNeed(action, wanted, choices))
    return StaffingPlan(needs, segment, roster)


def dispatch_for_level(
    conn: Connection,
    incident_id: int,
    now: datetime,
    release: bool = False,
    fresh: bool = False,
    restaff: bool = False,
) -> None:
    """Assign crews until the incident has what its current level asks for: on an
    upgrade, a decline or a timeout only the difference is dispatched, never a second
    full response. Each new batch of crews gets its escalation timers. `restaff` is a
    retry for an unstaffed incident: the supervisor was told already, so only a change
    is reported."""
    incident = conn.execute(select(incidents).where(incidents.c.id == incident_id)).first()
    if incident is None:
        raise BadEvent(f"incident {incident_id} does not exist")
    if incident.status == IncidentStatus.RESOLVED or (incident.held and not release):
        return
    playbook = Playbook.model_validate(incident.playbook_snapshot)
    if release:
        conn.execute(update(incidents).where(incidents.c.id == incident_id).values(held=0))
    elif _inhibited(conn, incident, playbook, now):
        conn.execute(update(incidents).where(incidents.c.id == incident_id).values(held=1))
        record_audit(
            conn,
            now,
            SYSTEM,
            "incident.held",
            "incident",
            incident_id,
            {"reason": "citywide red warning in force; routine work waits"},
        )
        log.info("incident held incident=%s (citywide red warning)", incident_id)
        return
    plan = plan_staffing(conn, incident, playbook, now, fresh)
    sent: list[str] = []
    for need in plan.needs:
        first_new: int | None = None
        for choice in need.choices:
            assignment_id = conn.execute(
                assignments.insert().values(
                    incident_id=incident_id,
                    crew_id=choice.crew.id,
                    skill=need.action.skill,
                    state=AssignmentState.ASSIGNED,
                    why=choice.why,
                    level=incident.level,
                    ack_due_at=now + timedelta(minutes=need.action.ack_within_min),
                    created_at=now,
                    updated_at=now,
                )
            ).inserted_primary_key[0]
            first_new = first_new or int(assignment_id)
            sent.append(choice.crew.id)
            record_audit(
                conn,
                now,
                SYSTEM,
                "assignment.created",
                "assignment",
                assignment_id,
                {
                    "incident_id": incident_id,
                    "crew": choice.crew.id,
                    "why": choice.why,
                    "level": incident.level,
                },
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
        if first_new is not None:
            schedule_escalation(
                conn,
                incident_id,
                need.action.skill,
                incident.level,
                first_new,
                escalation_steps(playbook, incident.level, need.action.skill),
                now,
            )
    short = plan.short
    conn.execute(
        update(incidents).where(incidents.c.id == incident_id).values(unstaffed=1 if short else 0)
    )
    if incident.unstaffed and not short:
        record_audit(
            conn, now, SYSTEM, "incident.staffed", "incident", incident_id, {"crews": sent}
        )
        log.info("incident staffed incident=%s crews=%s", incident_id, ",".join(sent))
    if short and not (restaff and incident.unstaffed and not sent):
        record_audit(
            conn, now, SYSTEM, "incident.unstaffed", "incident", incident_id, {"missing": short}
        )
        log.warning("incident unstaffed incident=%s missing=%s", incident_id, short)
        owner_unit = next(
            (c.unit for c in plan.roster if plan.segment and plan.segment in c.segments), ""
        )
        alert_staff(
            conn,
            "supervisor",
            owner_unit,
            f"事件{incident_id}无可派班组（缺{'、'.join(short)}），请协调",
            incident_id,
            now,
        )
    follow_assignments(conn, incident_id, incident.status, "crews assigned", now)


RESTAFF_EVENT_PREFIX = "restaff-"


def restaffs_pending(conn: Connection) -> set[int]:
    """Incidents with a restaff request that dispatch has not handled yet: asking again
    every tick would only lengthen the queue it waits in."""
    handled = (
        select(processed_events.c.event_id)
        .where(processed_events.c.event_id == outbox.c.event_id)
        .exists()
    )
    waiting = conn.execute(
        select(outbox.c.event_id).where(
            outbox.c.event_id.like(f"{RESTAFF_EVENT_PREFIX}%"), ~handled
        )
    ).scalars()
    return {int(event_id.split("-")[1]) for event_id in waiting}


def restaffable_incidents(
    conn: Connection,
    now: datetime,
    skip: set[int] = frozenset(),  # type: ignore[assignment]
) -> list[int]:
    """Open, unheld incidents flagged unstaffed for which the policy would now find at
    least one crew (a crew came on shift, finished other work, or joined the roster)."""
    found = []
    for incident in conn.execute(
        select(incidents)
        .where(
            incidents.c.unstaffed == 1,
            incidents.c.held == 0,
            incidents.c.status != IncidentStatus.RESOLVED,
        )
        .order_by(incidents.c.id)
    ):
        if incident.id in skip:
            continue
        playbook = Playbook.model_validate(incident.playbook_snapshot)
        if any(need.choices for need in plan_staffing(conn, incident, playbook, now).needs):
            found.append(int(incident.id))
    return found


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


def _inhibited(conn: Connection, incident: Any, playbook: Playbook, now: datetime) -> bool:
    """Routine work waits while a citywide red warning this playbook acts on is in
    force: the crews are needed for the red response."""
    if incident.level != "routine":
        return False
    events = {t.event for t in playbook.triggers if isinstance(t, WarningTrigger)}
    if not events:
        return False
    everywhere = set(load_city().districts)
    for warning in warnings_in_force(conn, now):
        if (
            warning["level"] == "red"
            and warning["event"] in events
            and everywhere <= set(warning["districts"])
        ):
            return True
    return False


def release_incident(conn: Connection, incident_id: int, actor: str, now: datetime) -> bool:
    """A dispatcher releases a held incident: crews are dispatched now."""
    held = conn.execute(
        select(incidents.c.held).where(incidents.c.id == incident_id)
    ).scalar_one_or_none()
    if not held:
        return False
    record_audit(conn, now, actor, "incident.released", "incident", incident_id, {})
    dispatch_for_level(conn, incident_id, now, release=True)
    return True


_INHIBITION_BYPASS = False


def _sources_active(conn: Connection, incident_id: int) -> bool:
    thresholds = conn.execute(
        select(incidents.c.thresholds_active).where(incidents.c.id == incident_id)
    ).scalar_one()
    warnings = conn.execute(
        select(func.count())
        .select_from(incident_warnings)
        .where(
            incident_warnings.c.incident_id == incident_id, incident_warnings.c.state == "active"
        )
    ).scalar_one()
    return bool(thresholds or warnings)


def follow_assignments(
    conn: Connection, incident_id: int, old: str, reason: str, now: datetime
) -> str:
    states = (
        conn.execute(select(assignments.c.state).where(assignments.c.incident_id == incident_id))
        .scalars()
        .all()
    )
    new = status_after_crew_change(states, _sources_active(conn, incident_id))
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


def _crew_message(
    conn: Connection, assignment_id: int, links: CrewLinks | None, reminder: bool = False
) -> Message:
    row = conn.execute(
        select(
            assignments,
            crews.c.phone,
            incidents.c.category,
            incidents.c.lat,
            incidents.c.lon,
            incidents.c.playbook_snapshot,
        )
        .join(crews, crews.c.id == assignments.c.crew_id)
        .join(incidents, incidents.c.id == assignments.c.incident_id)
        .where(assignments.c.id == assignment_id)
    ).first()
    if row is None:
        raise BadEvent(f"assignment {assignment_id} does not exist")
    link = links.url(assignment_id, row.crew_id, as_utc(row.created_at)) if links else None  # type: ignore[arg-type]
    if reminder:
        body = crew_reminder_text(assignment_id, row.category, link)
        return Message(f"assignment:{assignment_id}:reminder", row.phone, body)
    first = first_report(conn, row.incident_id)
    action = Playbook.model_validate(row.playbook_snapshot).dispatch_for(row.level, row.skill)
    body = crew_assignment_text(
        assignment_id,
        row.category,
        row.lat,
        row.lon,
        first.address if first else None,
        first.description if first else "",
        action.ack_within_min if action else 10,
        action.checklist if action else (),
        link,
    )
    return Message(f"assignment:{assignment_id}", row.phone, body)


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


def _citizen_message(conn: Connection, kind: str, report_id: int) -> Message | None:
    report = conn.execute(select(reports).where(reports.c.id == report_id)).first()
    if report is None:
        raise BadEvent(f"report {report_id} does not exist")
    phone = (report.contact or {}).get("phone")
    if not phone:
        return None
    if kind == "citizen.received":
        body = citizen_received_text(report.id, report.service_code)
    else:
        done = conn.execute(
            select(incident_history.c.reason)
            .where(
                incident_history.c.incident_id == report.incident_id,
                incident_history.c.to_status == IncidentStatus.RESOLVED,
            )
            .order_by(incident_history.c.id.desc())
            .limit(1)
        ).scalar_one_or_none()
        body = citizen_resolved_text(report.id, report.service_code, _plain_outcome(done or ""))
    return Message(f"report:{report_id}:{kind}", phone, body)


def _plain_outcome(reason: str) -> str:
    if reason.startswith("resolved by dispatcher: "):
        return reason.removeprefix("resolved by dispatcher: ")
    return "处理班组已完成现场处置"


async def handle_notification(
    store: Store,
    channel: Channel,
    event: dict[str, Any],
    now: datetime,
    retry_delays: tuple[float, ...] = (1.0, 2.0, 4.0),
    links: CrewLinks | None = None,
) -> None:
    """Send one message (to a crew or a citizen) through the channel, once."""
    event_id = _field(event, "event_id")
    kind = _field(event, "type")
    with store.read() as conn:
        if conn.execute(
            select(processed_events.c.event_id).where(
                processed_events.c.event_id == event_id,
                processed_events.c.consumer == "notify",
            )
        ).first():
            return
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
            message = _citizen_message(conn, kind, entity_id)
        else:
            raise BadEvent(f"event {event_id} has unknown type {kind!r}")
    if message is None:
        with store.transaction() as conn:
            claim_event(conn, "notify", event_id, now)
        return
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
                f"{kind}.{outcome.status}",
                entity,
                entity_id,
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


class RetryLater(Exception):
    """Some sends of a chunk hit a retryable error: leave the event unclaimed so it is
    delivered again (the ledger makes the second pass send only what is still pending)."""


async def handle_send_chunk(
    store: Store, channels: dict[str, Channel], event: dict[str, Any], now: datetime
) -> None:
    from alerts.fanout import send_chunk

    event_id = _field(event, "event_id")
    with store.read() as conn:
        if conn.execute(
            select(processed_events.c.event_id).where(
                processed_events.c.event_id == event_id, processed_events.c.consumer == "sends"
            )
        ).first():
            return
    result = await send_chunk(
        store,
        channels,
        int(_field(event, "warning_id")),
        int(_field(event, "from_id")),
        int(_field(event, "to_id")),
        now,
    )
    if result.retry:
        raise RetryLater(f"{result.retry} sends to retry: {result.errors[:3]}")
    with store.transaction() as conn:
        if claim_event(conn, "sends", event_id, now):
            # Also what tells the console's live view that delivery counts moved.
            record_audit(
                conn,
                now,
                SYSTEM,
                "citizen_warning.chunk_sent",
                "citizen_warning",
                event["warning_id"],
                {
                    "from_id": event["from_id"],
                    "sent": result.sent,
                    "failed": result.failed,
                    "failed_over": result.failed_over,
                },
            )
    if result.sent or result.failed:
        log.info(
            "warning chunk sent warning=%s from=%s sent=%d failed=%d failed_over=%d skipped=%d",
            event["warning_id"],
            event["from_id"],
            result.sent,
            result.failed,
            result.failed_over,
            result.skipped,
        )

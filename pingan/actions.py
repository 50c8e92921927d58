"""Commands people give (a crew acknowledging, a crew finishing). Each validates the
move with the pure lifecycle, then writes the change, its audit row and its event in
one transaction. HTTP today; SMS replies and signed links call the same functions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update

from pingan.assignments import AssignmentState, CrewAction, TransitionRefused, next_state
from pingan.crews import Crew
from pingan.reports import ReportDraft
from pingan.store import Store, emit, record_audit
from pingan.store.schema import assignments, crews, incidents, reports, warning_messages
from pingan.warnings import signal_to_event
from playbooks.matcher import WarningSignal
from streams import topics


class NotFound(LookupError):
    pass


@dataclass(frozen=True)
class CrewActionResult:
    assignment_id: int
    incident_id: int
    state: str


def apply_crew_action(
    store: Store, assignment_id: int, action: CrewAction, actor: str, now: datetime
) -> CrewActionResult:
    """Raises NotFound or TransitionRefused (with the reason) and writes nothing then."""
    refused: TransitionRefused | None = None
    with store.transaction() as conn:
        row = conn.execute(
            select(assignments.c.state, assignments.c.incident_id)
            .where(assignments.c.id == assignment_id)
            .with_for_update()
        ).first()
        if row is None:
            raise NotFound(f"assignment {assignment_id} does not exist")
        try:
            new = next_state(row.state, action)
        except TransitionRefused as exc:
            refused = exc
        else:
            values: dict[str, object] = {"state": new.value, "updated_at": now}
            if new is AssignmentState.ACKNOWLEDGED:
                values["acknowledged_at"] = now
            elif new is AssignmentState.DONE:
                values["done_at"] = now
            conn.execute(
                update(assignments).where(assignments.c.id == assignment_id).values(**values)
            )
            record_audit(
                conn,
                now,
                actor,
                f"assignment.{new.value}",
                "assignment",
                assignment_id,
                {"from": row.state, "incident_id": row.incident_id},
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


def accept_report(store: Store, draft: ReportDraft, source: str, actor: str, now: datetime) -> int:
    """Persist a validated report and announce it, in one transaction: once this
    returns, the report survives any crash and will be processed."""
    with store.transaction() as conn:
        report_id = conn.execute(
            reports.insert().values(
                received_at=now,
                source=source,
                service_code=draft.service_code,
                lat=draft.lat,
                lon=draft.lon,
                address=draft.address,
                description=draft.description,
                media_url=draft.media_url,
                contact=draft.contact,
            )
        ).inserted_primary_key[0]
        record_audit(
            conn,
            now,
            actor,
            "report.accepted",
            "report",
            report_id,
            {"service_code": draft.service_code, "source": source},
        )
        emit(
            conn,
            topics.REPORTS,
            draft.service_code,
            {"type": "report.accepted", "report_id": report_id},
            now,
        )
    return int(report_id)


def sync_roster(store: Store, roster: list[Crew], now: datetime) -> int:
    """Make the crews table match the roster file; changes are audited. Crews no longer
    in the file stay (assignments point at them) but lose their skills."""
    changed = 0
    with store.transaction() as conn:
        current = {row.id: row for row in conn.execute(select(crews)).all()}
        listed = set()
        for crew in roster:
            listed.add(crew.id)
            values = {
                "name": crew.name,
                "leader": crew.leader,
                "phone": crew.phone,
                "skills": list(crew.skills),
                "unit": crew.unit,
                "home_lat": crew.home_lat,
                "home_lon": crew.home_lon,
                "capacity": crew.capacity,
                "equipment": list(crew.equipment),
            }
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
    return changed


def accept_warning(
    store: Store, signal: WarningSignal, headline: str, source: str, now: datetime
) -> bool:
    """Persist and announce a warning message. A message already received (same id and
    msg_type, e.g. re-polled) is not a new event: returns False and writes nothing."""
    with store.transaction() as conn:
        seen = conn.execute(
            select(warning_messages.c.id).where(
                warning_messages.c.warning_id == signal.id,
                warning_messages.c.msg_type == signal.msg_type,
            )
        ).first()
        if seen:
            return False
        message_id = conn.execute(
            warning_messages.insert().values(
                warning_id=signal.id,
                msg_type=signal.msg_type,
                event=signal.event,
                level=signal.level,
                districts=list(signal.districts),
                expires_at=signal.expires,
                references=list(signal.references),
                headline=headline,
                source=source,
                received_at=now,
            )
        ).inserted_primary_key[0]
        record_audit(
            conn,
            now,
            source,
            f"warning.{signal.msg_type.lower()}",
            "warning",
            signal.id,
            {
                "event": signal.event,
                "level": signal.level,
                "districts": list(signal.districts),
                "message": message_id,
            },
        )
        emit(
            conn,
            topics.WEATHER,
            signal.id,
            {"type": "warning.received", "warning": signal_to_event(signal, headline)},
            now,
        )
    return True


class NotAllowed(ValueError):
    """The command is not allowed in the current state; the message says why."""


def resolve_by_dispatcher(
    store: Store, incident_id: int, reason: str, actor: str, now: datetime
) -> None:
    """A dispatcher closes an incident (tasks still open stand down), if its playbook
    allows resolution by a dispatcher."""
    from streams.decisions import resolve_incident

    with store.transaction() as conn:
        row = conn.execute(
            select(incidents.c.status, incidents.c.playbook_snapshot)
            .where(incidents.c.id == incident_id)
            .with_for_update()
        ).first()
        if row is None:
            raise NotFound(f"incident {incident_id} does not exist")
        if row.status == "resolved":
            raise NotAllowed(f"incident {incident_id} is already resolved")
        allowed = row.playbook_snapshot.get("resolution", {}).get("when", [])
        if "dispatcher" not in allowed:
            raise NotAllowed(
                f"incident {incident_id}: its playbook resolves only by {', '.join(allowed)}"
            )
        resolve_incident(conn, incident_id, f"resolved by dispatcher: {reason}", actor, now)

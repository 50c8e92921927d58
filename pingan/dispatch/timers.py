"""Deadlines on a clock that survives restarts. Timers live in the database; the worker
checks for due ones every second and claims each by setting fired_at in the same
transaction that carries out its effects. A timer therefore fires exactly once: not
twice after a restart or a rebalance (the claim is in the database), and not never if
the process was down when it came due (it is still unfired, and due)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from pingan.core import topics
from pingan.core.dispatch import Occasion
from pingan.core.escalation import EscalationDecision, arrival_check, escalation_step
from pingan.dispatch.requests import request_dispatch
from pingan.store import SYSTEM, Store, emit, record_audit
from pingan.store.assignments import move_assignment
from pingan.store.db import insert_or_ignore_prebuilt, scratch, write_at_commit
from pingan.store.schema import assignments, crews, staff, staff_alerts, timers
from pingan.vocabulary import AssignmentState

log = logging.getLogger("pingan.timers")
# Built once (see pingan/store/incidents.py): a storm alerts staff for every incident.
# A timer already scheduled under its key is left as it is: one statement, where a
# savepoint around an insert took three round trips.
_TIMER_INSERT = insert_or_ignore_prebuilt(timers, timers.c.id)
_STAFF_ALERT_INSERT = insert(staff_alerts)
_PENDING_BETWEEN = select(timers.c.id).where(
    timers.c.key >= bindparam("lo"), timers.c.key < bindparam("hi"), timers.c.fired_at.is_(None)
)
DIGEST_WINDOW = timedelta(minutes=2)  # alerts to one person within this go as one SMS
ARRIVAL_GRACE = timedelta(minutes=10)  # reminder first, supervisor this much later


def add_timer(
    conn: Connection,
    kind: str,
    key: str,
    due_at: datetime,
    incident_id: int | None = None,
    assignment_id: int | None = None,
    payload: dict[str, Any] | None = None,
) -> bool:
    """Schedule once per key (a redelivered event does not schedule twice)."""
    added = conn.execute(
        _TIMER_INSERT[conn.dialect.name],
        dict(
            kind=kind,
            key=key,
            due_at=due_at,
            incident_id=incident_id,
            assignment_id=assignment_id,
            payload=payload or {},
        ),
    )
    return added.first() is not None


def schedule_escalation(
    conn: Connection,
    incident_id: int,
    skill: str,
    level: str,
    first_assignment_id: int,
    steps: Sequence[tuple[float, Sequence[str]]],
    now: datetime,
) -> None:
    for n, (after_min, notify) in enumerate(steps, start=1):
        add_timer(
            conn,
            "escalation",
            f"esc:{first_assignment_id}:{n}",
            now + timedelta(minutes=after_min),
            incident_id,
            first_assignment_id,
            {
                "skill": skill,
                "level": level,
                "notify": list(notify),
                "after_min": after_min,
                # The first step is where a crew is late: its silent leader is phoned
                # first, when voice calls are on (fire_due_timers(calls=True)).
                "call": n == 1,
            },
        )


def schedule_arrival(
    conn: Connection, assignment_id: int, incident_id: int, arrive_within_min: float, now: datetime
) -> None:
    due = now + timedelta(minutes=arrive_within_min)
    add_timer(conn, "arrival", f"arrive:{assignment_id}", due, incident_id, assignment_id)
    add_timer(
        conn,
        "arrival_late",
        f"arrive-late:{assignment_id}",
        due + ARRIVAL_GRACE,
        incident_id,
        assignment_id,
    )


def alert_staff(
    conn: Connection, role: str, unit: str, text: str, incident_id: int | None, now: datetime
) -> str | None:
    """Queue an alert for the unit's supervisor (or the duty leader); alerts to one
    person within DIGEST_WINDOW go out together. Returns who was alerted."""
    # The staff list is read once per transaction: a storm's batch alerts many times.
    memo = scratch(conn)
    if "staff" not in memo:
        memo["staff"] = conn.execute(select(staff)).all()
    people = memo["staff"]
    person = None
    if role == "supervisor":
        person = next((p for p in people if p.role == "supervisor" and p.unit == unit), None)
    elif role != "duty_leader":  # the bureau leader, where the roster names one
        person = next((p for p in people if p.role == role), None)
    if person is None:
        person = next((p for p in people if p.role == "duty_leader"), None)
    if person is None:
        log.error("nobody to alert role=%s unit=%s: %s", role, unit, text)
        return None
    # Read only by the digest when it fires, in a transaction of its own.
    write_at_commit(
        conn,
        _STAFF_ALERT_INSERT,
        dict(
            phone=person.phone, name=person.name, text=text, incident_id=incident_id, created_at=now
        ),
    )
    # Digest timers are keyed "digest:<phone>:<time>": a range on the unique key index
    # finds this person's, instead of reading every unfired timer's JSON. Found or made
    # once per transaction (a batch alerts one supervisor many times); an alert left
    # behind by a digest that fired meanwhile goes out with the person's next digest.
    digests = memo.setdefault("digest_pending", set())
    if person.phone not in digests:
        digests.add(person.phone)
        prefix = f"digest:{person.phone}:"
        pending = conn.execute(
            _PENDING_BETWEEN,
            {"lo": prefix, "hi": prefix[:-1] + ";"},  # ';' sorts right after ':'
        ).first()
        if pending is None:
            add_timer(
                conn,
                "digest",
                f"digest:{person.phone}:{now.timestamp():.3f}",
                now + DIGEST_WINDOW,
                incident_id,
                None,
                {"phone": person.phone},
            )
    record_audit(
        conn,
        now,
        SYSTEM,
        "staff.alerted",
        "incident",
        incident_id or 0,
        {"role": person.role, "unit": person.unit, "text": text},
    )
    return person.name


def fire_due_timers(store: Store, now: datetime, limit: int = 100, calls: bool = False) -> int:
    """Carry out every due timer once. Returns how many fired. `calls`: a voice channel
    is on, so an escalation phones a silent crew leader before it passes the task on."""
    with store.read() as conn:
        due = conn.execute(
            select(timers)
            .where(timers.c.fired_at.is_(None), timers.c.due_at <= now)
            .order_by(timers.c.due_at)
            .limit(limit)
        ).all()
    fired = 0
    for timer in due:
        with store.transaction() as conn:
            claimed = conn.execute(
                update(timers)
                .where(timers.c.id == timer.id, timers.c.fired_at.is_(None))
                .values(fired_at=now)
            )
            if claimed.rowcount != 1:
                continue  # another worker had it
            _fire(conn, timer, now, calls)
            fired += 1
    return fired


def _fire(conn: Connection, timer: Any, now: datetime, calls: bool = False) -> None:
    if timer.kind == "escalation":
        _escalate(conn, timer, now, calls)
    elif timer.kind in ("arrival", "arrival_late"):
        _arrival(conn, timer, now)
    elif timer.kind == "digest":
        _digest(conn, timer, now)


def _escalate(conn: Connection, timer: Any, now: datetime, calls: bool = False) -> None:
    p = timer.payload
    # The task's rows are locked while the step decides: a crew's 接单 being written at
    # this moment is either seen (the step stops) or waits and finds the task passed on,
    # never both an acknowledgement and a time-out with its alert and replacement.
    rows = conn.execute(
        select(assignments.c.id, assignments.c.state, assignments.c.crew_id, crews.c.unit)
        .join(crews, crews.c.id == assignments.c.crew_id)
        .where(assignments.c.incident_id == timer.incident_id, assignments.c.skill == p["skill"])
        .order_by(assignments.c.id)
        .with_for_update(of=assignments)
    ).all()
    decision = escalation_step(
        p["notify"],
        [(r.id, r.state) for r in rows],
        p["after_min"],
        call=calls and bool(p.get("call")),
    )
    if decision.stop:
        return
    if decision.call:
        _call_first(conn, timer, decision, now)
        return
    units = {r.id: r.unit for r in rows}
    for assignment_id in decision.time_out:
        move_assignment(
            conn,
            assignment_id,
            AssignmentState.TIMED_OUT,
            now,
            allowed_from=[AssignmentState.ASSIGNED],
            note=f"no acknowledgement within {p['after_min']:g} min",
        )
        record_audit(
            conn,
            now,
            SYSTEM,
            "assignment.timed_out",
            "assignment",
            assignment_id,
            {"incident_id": timer.incident_id, "reason": decision.reason},
        )
        emit(
            conn,
            topics.CREW_EVENTS,
            str(timer.incident_id),
            {
                "type": "assignment.timed_out",
                "assignment_id": assignment_id,
                "incident_id": timer.incident_id,
            },
            now,
        )
    log.warning(
        "escalation incident=%s skill=%s timed_out=%s tell=%s",
        timer.incident_id,
        p["skill"],
        list(decision.time_out),
        list(decision.tell),
    )
    if decision.replace:
        request_dispatch(conn, timer.incident_id, Occasion.NEED, now)
    unit = (
        units.get(decision.time_out[0], "") if decision.time_out else next(iter(units.values()), "")
    )
    silent = ", ".join(f"#{a}" for a in decision.time_out) or "the crews sent"
    for role in decision.tell:
        alert_staff(
            conn,
            role,
            unit,
            f"事件{timer.incident_id}（{p['skill']}）{decision.reason}；"
            f"{silent}未确认" + ("，已改派下一班组" if decision.replace else ""),
            timer.incident_id,
            now,
        )


def _call_first(conn: Connection, timer: Any, decision: EscalationDecision, now: datetime) -> None:
    """Phone the silent crews' leaders (the calls agent places each call once, through
    the send ledger) and take this step again once they had time to press 1; that
    second pass calls nobody."""
    for assignment_id in decision.call:
        emit(
            conn,
            topics.CALLS,
            str(timer.incident_id),
            {"type": "crew.call", "assignment_id": assignment_id, "incident_id": timer.incident_id},
            now,
        )
        record_audit(
            conn,
            now,
            SYSTEM,
            "assignment.called",
            "assignment",
            assignment_id,
            {"incident_id": timer.incident_id, "reason": decision.reason},
        )
    p = timer.payload
    add_timer(
        conn,
        "escalation",
        f"{timer.key}:after-call",
        now + timedelta(minutes=decision.wait_min),
        timer.incident_id,
        timer.assignment_id,
        p | {"call": False, "after_min": p["after_min"] + decision.wait_min},
    )
    log.warning(
        "escalation incident=%s skill=%s calling=%s",
        timer.incident_id,
        p["skill"],
        list(decision.call),
    )


def _arrival(conn: Connection, timer: Any, now: datetime) -> None:
    row = conn.execute(
        select(assignments.c.state, crews.c.unit, crews.c.id.label("crew"))
        .join(crews, crews.c.id == assignments.c.crew_id)
        .where(assignments.c.id == timer.assignment_id)
    ).first()
    if row is None:
        return
    action = arrival_check(row.state, late=timer.kind == "arrival_late")
    if action == "remind":
        emit(
            conn,
            topics.NOTIFICATIONS,
            str(timer.incident_id),
            {"type": "crew.reminder", "assignment_id": timer.assignment_id},
            now,
        )
        record_audit(
            conn, now, SYSTEM, "assignment.reminded", "assignment", timer.assignment_id, {}
        )
    elif action == "supervisor":
        alert_staff(
            conn,
            "supervisor",
            row.unit,
            f"班组{row.crew}（任务{timer.assignment_id}）超过到场时限仍未到达",
            timer.incident_id,
            now,
        )


def _digest(conn: Connection, timer: Any, now: datetime) -> None:
    phone = timer.payload["phone"]
    pending = (
        conn.execute(
            select(staff_alerts.c.id)
            .where(staff_alerts.c.phone == phone, staff_alerts.c.digest_key.is_(None))
            .order_by(staff_alerts.c.id)
        )
        .scalars()
        .all()
    )
    if not pending:
        return
    conn.execute(
        update(staff_alerts).where(staff_alerts.c.id.in_(pending)).values(digest_key=timer.key)
    )
    emit(conn, topics.NOTIFICATIONS, phone, {"type": "staff.digest", "digest_key": timer.key}, now)

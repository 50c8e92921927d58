"""Timers, digests, inhibition and KPIs against a real database."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from pingan.actions import apply_crew_action
from pingan.core import topics
from pingan.core.assignments import CrewAction
from pingan.core.events import WarningSignal
from pingan.dispatch.staffing import release_incident
from pingan.dispatch.timers import alert_staff, fire_due_timers
from pingan.intake.accept import accept_report, accept_warning
from pingan.kpis import compute, to_csv
from pingan.queries import assignment_facts
from pingan.store import Store
from pingan.store.schema import assignments, incidents, outbox, staff_alerts
from streams import handlers
from tests.conftest import NOW
from tests.integration.test_handlers import draft, events


def _dispatched(store: Store, index, lat: float = 33.5712) -> int:  # type: ignore[no-untyped-def]
    accept_report(store, draft(lat=lat, phone=""), "open311", "test", NOW)
    for event in events(store, topics.REPORTS):
        handlers.handle_report_accepted(store, index, event, NOW)
    for event in events(store, topics.INCIDENTS):
        handlers.handle_incident_event(store, event, NOW)
    with store.read() as conn:
        return (
            conn.execute(select(assignments.c.id).order_by(assignments.c.id.desc()))
            .scalars()
            .first()
        )


def _types(store: Store, topic: str) -> list[str]:
    with store.read() as conn:
        return [
            p["type"]
            for p in conn.execute(select(outbox.c.payload).where(outbox.c.topic == topic)).scalars()
        ]


def test_arrival_reminder_then_supervisor(staffed_store: Store, index) -> None:
    assignment = _dispatched(staffed_store, index)
    apply_crew_action(staffed_store, assignment, CrewAction.ACK, "crew", NOW)
    fire = lambda minutes: fire_due_timers(  # noqa: E731
        staffed_store, NOW + timedelta(minutes=minutes)
    )
    fire(29)
    assert "crew.reminder" not in _types(staffed_store, topics.NOTIFICATIONS)
    fire(31)  # fallen trees: arrive within 30 minutes
    assert _types(staffed_store, topics.NOTIFICATIONS).count("crew.reminder") == 1
    fire(41)
    with staffed_store.read() as conn:
        [alert] = conn.execute(select(staff_alerts)).all()
    assert "超过到场时限仍未到达" in alert.text and alert.phone == "+8610000000901"
    fire(60)  # nothing fires twice
    assert _types(staffed_store, topics.NOTIFICATIONS).count("crew.reminder") == 1


def test_no_reminder_when_the_crew_is_there(staffed_store: Store, index) -> None:
    assignment = _dispatched(staffed_store, index)
    apply_crew_action(staffed_store, assignment, CrewAction.ACK, "crew", NOW)
    apply_crew_action(staffed_store, assignment, CrewAction.ON_SCENE, "crew", NOW)
    fire_due_timers(staffed_store, NOW + timedelta(minutes=45))
    assert "crew.reminder" not in _types(staffed_store, topics.NOTIFICATIONS)
    with staffed_store.read() as conn:
        assert conn.execute(select(staff_alerts)).all() == []


def test_alerts_to_one_supervisor_within_the_window_are_one_digest(staffed_store: Store) -> None:
    with staffed_store.transaction() as conn:
        alert_staff(conn, "supervisor", "yuanhui-01", "first", 1, NOW)
        alert_staff(conn, "supervisor", "yuanhui-01", "second", 2, NOW + timedelta(seconds=50))
        alert_staff(conn, "supervisor", "nowhere", "to the duty leader", 3, NOW)
    fire_due_timers(staffed_store, NOW + timedelta(minutes=3))
    with staffed_store.read() as conn:
        digests = [
            p
            for p in conn.execute(select(outbox.c.payload)).scalars()
            if p["type"] == "staff.digest"
        ]
        bundled = conn.execute(select(staff_alerts.c.phone, staff_alerts.c.digest_key)).all()
    assert len(digests) == 2  # one for the supervisor (two alerts), one for the duty leader
    keys = {}
    for phone, key in bundled:
        keys.setdefault(phone, set()).add(key)
    assert {p: len(k) for p, k in keys.items()} == {"+8610000000901": 1, "+8610000000999": 1}


def test_citywide_red_warning_holds_routine_work_until_released(
    staffed_store: Store, index
) -> None:
    red = WarningSignal(
        "G1",
        "gale",
        "red",
        "Alert",
        ("yuanhui", "yancheng", "shaoling", "jingkai", "xicheng", "wuyang", "linying"),
        NOW,
        NOW + timedelta(hours=6),
    )
    accept_warning(staffed_store, red, "大风红色预警", "test", NOW)
    _dispatched(staffed_store, index)
    with staffed_store.read() as conn:
        site = conn.execute(select(incidents).where(incidents.c.scope == "site")).one()
        assert site.held == 1
        assert (
            conn.execute(select(assignments).where(assignments.c.incident_id == site.id)).all()
            == []
        )
    with staffed_store.transaction() as conn:
        assert release_incident(conn, site.id, "dispatcher", NOW)
    with staffed_store.read() as conn:
        assert (
            len(conn.execute(select(assignments).where(assignments.c.incident_id == site.id)).all())
            == 1
        )
        assert (
            conn.execute(select(incidents.c.held).where(incidents.c.id == site.id)).scalar_one()
            == 0
        )


def test_kpis(staffed_store: Store, index) -> None:
    first = _dispatched(staffed_store, index)
    apply_crew_action(staffed_store, first, CrewAction.ACK, "crew", NOW + timedelta(minutes=4))
    apply_crew_action(
        staffed_store, first, CrewAction.ON_SCENE, "crew", NOW + timedelta(minutes=20)
    )
    with staffed_store.read() as conn:
        facts = assignment_facts(conn, NOW - timedelta(days=1), NOW + timedelta(days=1))
    [row] = compute(facts, "category")
    assert row == {
        "category": "fallen_tree",
        "assignments": 1,
        "acknowledged": 1,
        "median_min_to_ack": 4.0,
        "median_min_to_arrive": 20.0,
        "median_min_to_resolve": None,
        "pct_ack_within_deadline": 100.0,
    }
    assert to_csv(compute(facts, "crew")).splitlines()[0].startswith("crew,assignments")


def _incident(store: Store, iid: int):  # type: ignore[no-untyped-def]
    with store.read() as conn:
        return conn.execute(select(incidents).where(incidents.c.id == iid)).one()


def test_merge_split_reopen_confirm(staffed_store: Store, index) -> None:
    from pingan.actions import (
        NotAllowed,
        confirm_incident,
        merge_incidents,
        reopen_incident,
        split_incident,
    )
    from pingan.store.schema import reports

    _dispatched(staffed_store, index, lat=33.5712)
    _dispatched(staffed_store, index, lat=33.5900)  # a second tree, far enough apart
    merge_incidents(staffed_store, 1, 2, "alice", NOW)
    assert _incident(staffed_store, 2).status == "resolved"
    with staffed_store.read() as conn:
        assert set(conn.execute(select(reports.c.incident_id)).scalars()) == {1}
        assert conn.execute(
            select(assignments.c.state).where(assignments.c.incident_id == 2)
        ).scalars().all() == ["cancelled"]
    import pytest

    with pytest.raises(NotAllowed, match="only open incidents"):
        merge_incidents(staffed_store, 1, 2, "alice", NOW)

    new = split_incident(staffed_store, 1, [2], "alice", NOW)
    assert _incident(staffed_store, new).status == "open"
    with pytest.raises(NotAllowed, match="leave at least one report"):
        split_incident(staffed_store, 1, [1], "alice", NOW)
    for event in events(staffed_store, topics.INCIDENTS):
        handlers.handle_incident_event(staffed_store, event, NOW)
    with staffed_store.read() as conn:
        assert conn.execute(select(assignments).where(assignments.c.incident_id == new)).all()

    with staffed_store.read() as conn:
        first = (
            conn.execute(select(assignments.c.id).where(assignments.c.incident_id == 1))
            .scalars()
            .first()
        )
    apply_crew_action(staffed_store, first, CrewAction.ACK, "crew", NOW)
    apply_crew_action(staffed_store, first, CrewAction.DONE, "crew", NOW)
    for event in events(staffed_store, topics.CREW_EVENTS):
        handlers.handle_crew_event(staffed_store, event, NOW)
    assert _incident(staffed_store, 1).status == "resolved"
    reopen_incident(staffed_store, 1, "the tree fell again", "alice", NOW)
    for event in events(staffed_store, topics.INCIDENTS):
        handlers.handle_incident_event(staffed_store, event, NOW)
    with staffed_store.read() as conn:
        states = (
            conn.execute(
                select(assignments.c.state)
                .where(assignments.c.incident_id == 1)
                .order_by(assignments.c.id)
            )
            .scalars()
            .all()
        )
    assert states == ["done", "assigned"]  # a crew goes again
    assert _incident(staffed_store, 1).status == "dispatched"
    assert confirm_incident(staffed_store, 1, "alice", NOW) == "routine"


def test_silent_crew_is_replaced_through_a_dispatch_request(staffed_store: Store, index) -> None:
    """The escalation timer does not call dispatch itself: it times the silent crew
    out and asks for a dispatch on the incident's partition; the agent's handling of
    that request sends the next crew, once."""
    first = _dispatched(staffed_store, index)
    fire_due_timers(staffed_store, NOW + timedelta(minutes=60))
    requests = [
        e for e in events(staffed_store, topics.INCIDENTS) if e["type"] == "incident.dispatch"
    ]
    assert [(r["occasion"], r["incident_id"]) for r in requests] == [("need", 1)]
    with staffed_store.read() as conn:
        assert conn.execute(select(assignments.c.state)).scalars().all() == ["timed_out"]
    for event in requests + requests:  # redelivered: still one more crew
        handlers.handle_incident_event(staffed_store, event, NOW + timedelta(minutes=60))
    with staffed_store.read() as conn:
        rows = conn.execute(select(assignments.c.id, assignments.c.state)).all()
    assert [tuple(r) for r in rows] == [(first, "timed_out"), (first + 1, "assigned")]


def test_an_acknowledgement_at_the_deadline_is_not_also_a_time_out(
    staffed_store: Store, index
) -> None:
    """The crew presses 接单 just as its deadline fires. Whichever commits first wins,
    and only its consequences follow: the step used to read the crew as silent while the
    acknowledgement was being written, then find it could not time the task out, and
    tell the supervisor and ask for the next crew all the same (PostgreSQL)."""
    import threading

    from sqlalchemy import update

    from pingan.store.schema import audit

    assignment = _dispatched(staffed_store, index)
    done = threading.Event()

    def deadline() -> None:
        fire_due_timers(staffed_store, NOW + timedelta(minutes=11))
        done.set()

    with staffed_store.transaction() as conn:  # the acknowledgement, being written
        conn.execute(
            update(assignments)
            .where(assignments.c.id == assignment)
            .values(state="acknowledged", acknowledged_at=NOW + timedelta(minutes=10))
        )
        timer = threading.Thread(target=deadline)
        timer.start()
        done.wait(1.0)
    timer.join(30)
    assert done.is_set()
    with staffed_store.read() as conn:
        actions = conn.execute(select(audit.c.action)).scalars().all()
        states = conn.execute(select(assignments.c.state)).scalars().all()
        alerts = conn.execute(select(staff_alerts)).all()
    assert "assignment.timed_out" not in actions
    assert states == ["acknowledged"] and alerts == []
    assert "incident.dispatch" not in _types(staffed_store, topics.INCIDENTS)

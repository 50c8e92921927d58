"""The handlers against a real database (SQLite and PostgreSQL): each event applied
once, redeliveries change nothing, the whole slice reaches 'resolved'."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from alerts.channels.base import Message, RetryableError
from alerts.channels.local_outbox import LocalOutboxChannel
from alerts.pipeline import Sender
from pingan.actions import apply_crew_action
from pingan.core import topics
from pingan.core.assignments import CrewAction, TransitionRefused
from pingan.intake.accept import Accepted, accept_report
from pingan.intake.reports import ReportDraft
from pingan.store import Store
from pingan.store.schema import (
    assignments,
    audit,
    incidents,
    local_messages,
    outbox,
    processed_events,
    reports,
    sends,
    staff_alerts,
)
from streams import handlers
from tests.conftest import NOW


def draft(
    lat: float = 33.5712, lon: float = 114.0153, text: str = "树倒了", phone: str = "+8613800000000"
) -> ReportDraft:
    return ReportDraft("fallen_tree", lat, lon, None, text, None, {"phone": phone})


def events(store: Store, topic: str) -> list[dict]:
    with store.read() as conn:
        return [
            r.payload
            for r in conn.execute(
                select(outbox.c.payload).where(outbox.c.topic == topic).order_by(outbox.c.id)
            )
        ]


def count(store: Store, table) -> int:  # type: ignore[no-untyped-def]
    with store.read() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def test_accepted_report_is_persisted_with_its_event(staffed_store: Store) -> None:
    report_id = accept_report(staffed_store, draft(), "open311", "test", NOW).report_id
    [event] = events(staffed_store, topics.REPORTS)
    assert event["type"] == "report.accepted" and event["report_id"] == report_id
    with staffed_store.read() as conn:
        row = conn.execute(select(reports).where(reports.c.id == report_id)).one()
    assert row.contact == {"phone": "+8613800000000"} and row.incident_id is None
    assert (row.district, row.segment, row.located_by) == ("yuanhui", "yuanhui-01", "coordinates")


def test_same_caller_same_text_is_folded(staffed_store: Store) -> None:
    first = accept_report(staffed_store, draft(), "open311", "test", NOW)
    again = accept_report(
        staffed_store, draft(text=" 树倒了 "), "sms", "test", NOW + timedelta(seconds=30)
    )
    later = accept_report(staffed_store, draft(), "open311", "test", NOW + timedelta(minutes=3))
    other = accept_report(staffed_store, draft(phone="+8613900000000"), "open311", "test", NOW)
    assert again == Accepted(first.report_id, duplicate=True)
    assert len({first.report_id, later.report_id, other.report_id}) == 3
    assert len(events(staffed_store, topics.REPORTS)) == 3


def test_unplaceable_report_waits_for_review(staffed_store: Store) -> None:
    lost = ReportDraft("fallen_tree", None, None, "某个小区门口", "树倒了", None, {})
    accepted = accept_report(staffed_store, lost, "open311", "test", NOW)
    assert accepted.review_reason.startswith("location unknown")
    assert events(staffed_store, topics.REPORTS) == []
    placed = ReportDraft("fallen_tree", None, None, "召陵区 滨河路", "树倒了", None, {})
    ok = accept_report(staffed_store, placed, "open311", "test", NOW)
    assert ok.review_reason is None
    with staffed_store.read() as conn:
        row = conn.execute(select(reports).where(reports.c.id == ok.report_id)).one()
    assert (row.district, row.segment, row.located_by) == ("shaoling", "shaoling-01", "gazetteer")


def test_report_opens_incident_once_even_when_redelivered(staffed_store: Store, index) -> None:
    accept_report(staffed_store, draft(), "open311", "test", NOW)
    [event] = events(staffed_store, topics.REPORTS)
    handlers.handle_report_accepted(staffed_store, index, event, NOW)
    handlers.handle_report_accepted(staffed_store, index, event, NOW)  # redelivery
    assert count(staffed_store, incidents) == 1
    [opened] = events(staffed_store, topics.INCIDENTS)
    assert opened["type"] == "incident.opened"


def test_second_report_nearby_joins_the_incident(staffed_store: Store, index) -> None:
    for d in (draft(), draft(lat=33.57135, text="人民路大树倒了"), draft(lat=33.60, phone="")):
        accept_report(staffed_store, d, "open311", "test", NOW)
    for event in events(staffed_store, topics.REPORTS):
        handlers.handle_report_accepted(staffed_store, index, event, NOW + timedelta(minutes=1))
    with staffed_store.read() as conn:
        linked = conn.execute(select(reports.c.id, reports.c.incident_id).order_by(reports.c.id))
        assert [r.incident_id for r in linked] == [1, 1, 2]


def _open_and_dispatch(store: Store, index) -> int:  # type: ignore[no-untyped-def]
    accept_report(store, draft(), "open311", "test", NOW)
    handlers.handle_report_accepted(store, index, events(store, topics.REPORTS)[0], NOW)
    opened = events(store, topics.INCIDENTS)[0]
    handlers.handle_incident_event(store, opened, NOW)
    handlers.handle_incident_event(store, opened, NOW)  # redelivery
    return int(opened["incident_id"])


def test_dispatch_assigns_the_nearest_tree_crew_once(staffed_store: Store, index) -> None:
    incident_id = _open_and_dispatch(staffed_store, index)
    with staffed_store.read() as conn:
        [a] = conn.execute(select(assignments)).all()
        status = conn.execute(select(incidents.c.status)).scalar_one()
    assert (a.incident_id, a.crew_id, a.state) == (incident_id, "tree-near", "assigned")
    assert "owns road segment yuanhui-01" in a.why
    assert status == "dispatched"
    crew_notes = [
        e for e in events(staffed_store, topics.NOTIFICATIONS) if e["type"] == "crew.assignment"
    ]
    assert [e["assignment_id"] for e in crew_notes] == [a.id]


def test_no_crew_available_flags_incident_unstaffed(store: Store, index) -> None:
    # No roster loaded: nobody can go.
    _open_and_dispatch(store, index)
    with store.read() as conn:
        row = conn.execute(select(incidents)).one()
        actions = conn.execute(select(audit.c.action)).scalars().all()
    assert row.status == "open" and row.unstaffed == 1
    assert "incident.unstaffed" in actions


def test_unstaffed_incident_gets_a_crew_once_one_is_free(staffed_store: Store, index) -> None:
    """Both tree crews busy: the third fallen tree is unstaffed and the supervisor told
    once. When a crew finishes, the next clock tick asks again and the incident is
    staffed, in its own partition, exactly once."""
    store = staffed_store
    spots = [(33.5712, 114.0153), (33.6000, 114.0600), (33.5300, 113.9500)]
    for n, (lat, lon) in enumerate(spots):
        accept_report(store, draft(lat, lon, phone=f"+861380000000{n}"), "open311", "t", NOW)
    for event in events(store, topics.REPORTS):
        handlers.handle_report_accepted(store, index, event, NOW)
    for event in events(store, topics.INCIDENTS):
        handlers.handle_incident_event(store, event, NOW)

    def state() -> tuple[list[int], list[tuple[int, str, str]], int]:
        with store.read() as conn:
            flagged = conn.execute(select(incidents.c.id).where(incidents.c.unstaffed == 1))
            rows = conn.execute(
                select(
                    assignments.c.incident_id, assignments.c.crew_id, assignments.c.state
                ).order_by(assignments.c.id)
            ).all()
            alerts = conn.execute(select(func.count()).select_from(staff_alerts)).scalar_one()
        return list(flagged.scalars()), [tuple(r) for r in rows], alerts

    assert state() == ([3], [(1, "tree-near", "assigned"), (2, "tree-far", "assigned")], 1)

    def restaff_events() -> list[dict]:
        return [e for e in events(store, topics.INCIDENTS) if e["type"] == "incident.dispatch"]

    later = NOW + timedelta(minutes=5)
    handlers.handle_clock_tick(store, index, later)  # nobody free: nothing to ask
    assert restaff_events() == []
    # A retry that still finds nobody (another incident took the crew first) stays quiet.
    quiet = {
        "event_id": "retry-1",
        "type": "incident.dispatch",
        "incident_id": 3,
        "occasion": "restaff",
    }
    handlers.handle_incident_event(store, quiet, later)
    assert state()[2] == 1

    apply_crew_action(store, 1, CrewAction.ACK, "crew", later)
    apply_crew_action(store, 1, CrewAction.DONE, "crew", later)
    handlers.handle_clock_tick(store, index, later)
    # A backlog holds the request back: later ticks do not ask a second time.
    handlers.handle_clock_tick(store, index, later + timedelta(seconds=15))
    handlers.handle_clock_tick(store, index, later + timedelta(seconds=30))
    [restaff] = restaff_events()
    assert restaff["incident_id"] == 3
    handlers.handle_incident_event(store, restaff, later)
    handlers.handle_incident_event(store, restaff, later)  # redelivery
    handlers.handle_clock_tick(store, index, later)  # staffed now: not asked again
    assert len(restaff_events()) == 1
    flagged, rows, alerts = state()
    assert flagged == [] and alerts == 1
    assert rows[-1] == (3, "tree-near", "assigned") and len(rows) == 3
    with store.read() as conn:
        staffed = conn.execute(
            select(audit.c.detail).where(audit.c.action == "incident.staffed")
        ).scalar_one()
    assert staffed == {"crews": ["tree-near"]}


def test_crew_is_notified_once_across_redeliveries(staffed_store: Store, index) -> None:
    _open_and_dispatch(staffed_store, index)
    [note] = [
        e for e in events(staffed_store, topics.NOTIFICATIONS) if e["type"] == "crew.assignment"
    ]
    channel = LocalOutboxChannel(staffed_store)
    for _ in range(3):
        asyncio.run(
            handlers.handle_notification(
                staffed_store, Sender(staffed_store, {"sms": channel}), note, NOW
            )
        )
    # Even with the 'processed' mark lost (crash after sending), the ledger holds.
    with staffed_store.transaction() as conn:
        conn.execute(processed_events.delete().where(processed_events.c.consumer == "notify"))
    asyncio.run(
        handlers.handle_notification(
            staffed_store, Sender(staffed_store, {"sms": channel}), note, NOW
        )
    )
    with staffed_store.read() as conn:
        [msg] = conn.execute(select(local_messages)).all()
        [ledger] = conn.execute(select(sends)).all()
    assert msg.recipient == "+8610000000101" and "倒伏树木" in msg.body
    assert (ledger.status, ledger.provider_id) == ("sent", f"local-{msg.id}")


class FlakyChannel:
    name = "flaky"

    def __init__(self, failures: int) -> None:
        self.failures, self.sent = failures, []

    async def send(self, message: Message) -> str:
        if self.failures:
            self.failures -= 1
            raise RetryableError("provider busy")
        self.sent.append(message)
        return "p-1"


def test_retryable_send_is_retried_then_recorded(staffed_store: Store, index) -> None:
    """The notify handler queues and tries once; the pipeline tries again when the
    backoff says, and records the message sent after the third attempt."""
    _open_and_dispatch(staffed_store, index)
    [note] = [
        e for e in events(staffed_store, topics.NOTIFICATIONS) if e["type"] == "crew.assignment"
    ]
    channel = FlakyChannel(failures=2)
    sender = Sender(staffed_store, {"sms": channel})
    asyncio.run(handlers.handle_notification(staffed_store, sender, note, NOW))
    assert asyncio.run(sender.drain(NOW)).sent == 0  # not due again yet
    for seconds in (3, 8):  # backoff 2 s, then 4 s (from when each answer came)
        asyncio.run(sender.drain(NOW + timedelta(seconds=seconds)))
    assert len(channel.sent) == 1
    with staffed_store.read() as conn:
        row = conn.execute(select(sends.c.status, sends.c.attempts)).one()
    assert tuple(row) == ("sent", 3)


def test_ack_then_done_resolves_the_incident(staffed_store: Store, index) -> None:
    incident_id = _open_and_dispatch(staffed_store, index)
    with pytest.raises(TransitionRefused, match="before the assignment is acknowledged"):
        apply_crew_action(staffed_store, 1, CrewAction.DONE, "crew", NOW)
    apply_crew_action(staffed_store, 1, CrewAction.ACK, "crew", NOW)
    apply_crew_action(staffed_store, 1, CrewAction.DONE, "crew", NOW + timedelta(minutes=20))
    crew_events = events(staffed_store, topics.CREW_EVENTS)
    assert [e["type"] for e in crew_events] == ["assignment.acknowledged", "assignment.done"]
    for event in crew_events + crew_events:  # every event twice
        handlers.handle_crew_event(staffed_store, event, NOW + timedelta(minutes=20))
    with staffed_store.read() as conn:
        row = conn.execute(select(incidents).where(incidents.c.id == incident_id)).one()
        actions = conn.execute(select(audit.c.action).order_by(audit.c.id)).scalars().all()
    assert row.status == "resolved" and row.resolved_at is not None
    assert actions.count("incident.resolved") == 1
    assert "assignment.done.refused" in actions


def test_malformed_event_is_rejected_once_and_audited(staffed_store: Store) -> None:
    bad = {"event_id": "e-1", "type": "report.accepted"}  # no report_id
    with pytest.raises(handlers.BadEvent, match="has no 'report_id'"):
        handlers.handle_report_accepted(staffed_store, None, bad, NOW)  # type: ignore[arg-type]
    handlers.reject_event(staffed_store, "incidents", bad, "no report_id", NOW)
    handlers.reject_event(staffed_store, "incidents", bad, "no report_id", NOW)
    with staffed_store.read() as conn:
        rejected = (
            conn.execute(select(audit.c.entity_id).where(audit.c.action == "event.rejected"))
            .scalars()
            .all()
        )
    assert rejected == ["e-1"]


def test_resolving_releases_crews_on_their_way_or_on_scene(staffed_store: Store, index) -> None:
    """A crew en route or on scene when the incident is resolved stands down too;
    before, only assigned/acknowledged tasks were cancelled and such a crew stayed
    busy (counted against its capacity) for good."""
    from pingan.store.incidents import resolve_incident

    incident_id = _open_and_dispatch(staffed_store, index)
    apply_crew_action(staffed_store, 1, CrewAction.ACK, "crew", NOW)
    apply_crew_action(staffed_store, 1, CrewAction.ON_SCENE, "crew", NOW)
    with staffed_store.transaction() as conn:
        resolve_incident(conn, incident_id, "warning lifted", "test", NOW)
    with staffed_store.read() as conn:
        state = conn.execute(select(assignments.c.state)).scalar_one()
    assert state == "cancelled"


def test_a_message_the_provider_keeps_refusing_is_not_dropped(staffed_store: Store, index) -> None:
    """A provider failing for an hour: the notify event is claimed at once (the agent
    does not wait on the provider) and the crew's message stays pending in the ledger,
    never recorded as done; past two minutes the unit supervisor is told, once; once
    the provider is back, a fresh process (a restart) sends it exactly once."""
    from sqlalchemy import and_

    _open_and_dispatch(staffed_store, index)
    [note] = [
        e for e in events(staffed_store, topics.NOTIFICATIONS) if e["type"] == "crew.assignment"
    ]
    down = FlakyChannel(failures=10_000)
    sender = Sender(staffed_store, {"sms": down})
    for _ in range(2):  # the event, and a redelivered copy of it
        asyncio.run(handlers.handle_notification(staffed_store, sender, note, NOW))

    def claimed() -> int:
        with staffed_store.read() as conn:
            return conn.execute(
                select(func.count())
                .select_from(processed_events)
                .where(
                    and_(
                        processed_events.c.event_id == note["event_id"],
                        processed_events.c.consumer == "notify",
                    )
                )
            ).scalar_one()

    assert claimed() == 1 and down.sent == []
    for minute in range(1, 61):
        asyncio.run(sender.drain(NOW + timedelta(minutes=minute)))
    with staffed_store.read() as conn:
        ledger = {r.channel: r for r in conn.execute(select(sends))}
        told = conn.execute(select(staff_alerts.c.text)).scalars().all()
    assert ledger["sms"].status == "pending" and ledger["sms"].attempts > 30
    assert ledger["supervisor"].status == "sent"
    assert told == ["任务1：园林抢险近班的派单短信多次发送失败，仍在重试，请电话联系班组"]
    back = FlakyChannel(failures=0)
    restarted = Sender(staffed_store, {"sms": back})
    for _ in range(3):
        asyncio.run(restarted.drain(NOW + timedelta(hours=2)))
    assert len(back.sent) == 1
    with staffed_store.read() as conn:
        assert (
            conn.execute(select(sends.c.status).where(sends.c.channel == "sms")).scalar_one()
            == "sent"
        )

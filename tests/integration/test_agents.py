"""Agents unit-tested with faust's test_context (no broker): they hand events to the
handlers, survive malformed events, and reject them once."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections import Counter

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import func, select, text

from alerts.channels.local_outbox import LocalOutboxChannel
from pingan.core import topics
from pingan.intake.accept import accept_report
from pingan.settings import Settings
from pingan.store import Store
from pingan.store.schema import assignments, audit, incidents, outbox, staff_alerts
from streams.app import build_app
from tests.conftest import NOW, fresh_postgres_database, new_store
from tests.integration.test_handlers import draft


def test_reports_agent_opens_one_incident_and_rejects_garbage(
    staffed_store: Store, registry
) -> None:
    report_id = accept_report(staffed_store, draft(), "open311", "test", NOW).report_id
    with staffed_store.read() as conn:
        event = conn.execute(
            select(outbox.c.payload).where(outbox.c.topic == topics.REPORTS)
        ).scalar_one()
    built = build_app(
        Settings(kafka_url="127.0.0.1:1"),
        staffed_store,
        registry,
        LocalOutboxChannel(staffed_store),
        app_id=f"test-{uuid.uuid4().hex}",
    )
    agent = built.agents["incidents"]

    async def drive() -> None:
        async with agent.test_context() as context:
            await context.put(event)
            await context.put(event)  # a redelivery
            await context.put("not json object")
            await context.put({"event_id": "broken-1", "type": "report.accepted"})

    asyncio.run(drive())
    with staffed_store.read() as conn:
        opened = conn.execute(select(incidents.c.id, incidents.c.playbook_id)).all()
        rejected = (
            conn.execute(select(audit.c.entity_id).where(audit.c.action == "event.rejected"))
            .scalars()
            .all()
        )
    assert [tuple(r) for r in opened] == [(1, "fallen-trees")]
    assert rejected == ["broken-1"]
    assert report_id == 1


def _report_events(store: Store, count: int) -> list[dict]:
    for n in range(count):  # far apart: each opens its own incident
        accept_report(store, draft(lat=33.50 + n * 0.02, phone=""), "open311", "test", NOW)
    with store.read() as conn:
        return [
            dict(p)
            for p in conn.execute(
                select(outbox.c.payload).where(outbox.c.topic == topics.REPORTS)
            ).scalars()
        ]


def test_a_batch_is_one_commit_and_a_bad_event_does_not_hold_back_the_rest(
    staffed_store: Store, registry
) -> None:
    """Reports taken in a batch are applied in one transaction (one commit announces all
    their incidents). A malformed event in a batch undoes it; its events are then taken
    one at a time: the good ones applied, the bad one rejected once."""
    from streams import handlers
    from streams.app import _apply_batch
    from streams.watchdog import Watchdog

    def apply(conn, event, now) -> None:  # type: ignore[no-untyped-def]
        handlers.apply_report_accepted(conn, registry.index, event, now)

    watchdog = Watchdog(staffed_store, 60, exit_process=lambda code: None)
    first, second, third, fourth = _report_events(staffed_store, 4)
    commits: list[int] = []
    staffed_store.on_emit.append(lambda: commits.append(1))

    asyncio.run(_apply_batch(staffed_store, "incidents", [first, second], apply, watchdog))
    assert len(commits) == 1  # one transaction for the batch
    broken = {"event_id": "broken-2", "type": "report.accepted"}  # no report_id
    batch = [third, broken, "not an object", fourth]
    asyncio.run(_apply_batch(staffed_store, "incidents", batch, apply, watchdog))
    with staffed_store.read() as conn:
        linked = conn.execute(select(incidents.c.id)).scalars().all()
        rejected = (
            conn.execute(select(audit.c.entity_id).where(audit.c.action == "event.rejected"))
            .scalars()
            .all()
        )
    assert len(linked) == 4
    assert rejected == ["broken-2"]  # (what is no object has no id to audit; it is logged)


def test_a_batch_claims_its_events_in_one_statement_and_applies_each_once(
    staffed_store: Store, registry
) -> None:
    """A batch claims all its events at once; a second copy of an event in the same
    batch (the relay published it twice) and the whole batch delivered again change
    nothing."""

    from pingan.store.schema import processed_events
    from streams import handlers

    def apply(conn, event, now) -> None:  # type: ignore[no-untyped-def]
        handlers.apply_report_accepted(conn, registry.index, event, now)

    first, second = _report_events(staffed_store, 2)
    claims: list[str] = []

    def count_claims(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
        if statement.startswith("INSERT INTO processed_events"):
            claims.append(statement)

    sa_event.listen(staffed_store.engine, "before_cursor_execute", count_claims)
    batch = [first, dict(first), second]
    handlers.apply_batch(staffed_store, handlers.INCIDENTS, apply, batch, NOW)
    assert len(claims) == 1
    handlers.apply_batch(staffed_store, handlers.INCIDENTS, apply, batch, NOW)
    with staffed_store.read() as conn:
        opened = conn.execute(select(incidents.c.id)).scalars().all()
        marks = conn.execute(select(processed_events.c.consumer)).scalars().all()
    assert len(opened) == 2
    assert marks == [handlers.INCIDENTS, handlers.INCIDENTS]


def test_reports_in_one_batch_decide_as_one_at_a_time_would(  # type: ignore[no-untyped-def]
    store: Store, registry, tmp_path
) -> None:
    """A batch links its reports when it commits: the incidents' report counts must still
    see the reports linked earlier in the batch, so the fifth report of one dark street
    upgrades its incident in a batch as it does alone, and a report announced twice is
    linked once. On PostgreSQL the batch reads every report's candidates at once: a
    report near an incident the batch has just opened or changed must ask again."""
    from pingan.intake.reports import ReportDraft
    from pingan.store.schema import incident_history, reports
    from streams import handlers

    def accepted(store: Store) -> list[dict]:
        for n in range(9):  # six along one street, three along another
            lat = 33.5712 + (0.0002 * n if n < 6 else 0.03 + 0.0002 * n)
            light = ReportDraft("streetlight", lat, 114.0153, None, f"路灯不亮 {n}", None, {})
            accept_report(store, light, "open311", "test", NOW)
        with store.read() as conn:
            found = [
                dict(p)
                for p in conn.execute(
                    select(outbox.c.payload)
                    .where(outbox.c.topic == topics.REPORTS)
                    .order_by(outbox.c.id)
                ).scalars()
            ]
        again = found[2] | {"event_id": "announced-again"}
        return [*found[:4], again, *found[4:]]

    def apply(conn, event, now) -> None:  # type: ignore[no-untyped-def]
        handlers.apply_report_accepted(conn, registry.index, event, now)

    def outcome(store: Store) -> tuple[list[tuple], ...]:
        with store.read() as conn:
            trail = conn.execute(
                select(audit.c.action, audit.c.entity_id)
                .where(audit.c.action.like("incident.%"))
                .order_by(audit.c.id)
            ).all()
            opened = conn.execute(
                select(incidents.c.id, incidents.c.level).order_by(incidents.c.id)
            ).all()
            links = conn.execute(
                select(reports.c.id, reports.c.incident_id).order_by(reports.c.id)
            ).all()
            history = conn.execute(
                select(incident_history.c.incident_id, incident_history.c.reason).order_by(
                    incident_history.c.id
                )
            ).all()
        return tuple([tuple(r) for r in rows] for rows in (opened, links, history, trail))

    batched = store
    events = accepted(batched)
    # The first alone, so the batch starts with an open incident (and a search radius).
    handlers.in_transaction(batched, apply, events[0], NOW)
    handlers.apply_batch(batched, handlers.INCIDENTS, apply, events[1:], NOW)
    with new_store(store.is_sqlite, tmp_path, "other.db") as one_by_one:
        for event in accepted(one_by_one):
            handlers.in_transaction(one_by_one, apply, event, NOW)
        alone = outcome(one_by_one)

    assert len(events) == 10
    assert outcome(batched) == alone
    opened, links, history, trail = outcome(batched)
    assert len([a for a, _ in trail if a in ("incident.attached", "incident.upgraded")]) == 7
    assert [level for _, level in opened] == ["blue", "routine"]
    assert all(incident is not None for _, incident in links)
    assert any("5 reports corroborate" in reason for _, reason in history)


def test_dispatch_in_one_batch_assigns_as_one_at_a_time_would(registry, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Dispatch keeps the crews' load within a batch's transaction: twelve incidents
    opened at once are staffed exactly as if each had its own transaction (no crew
    sent past its capacity because the batch read the load once). The batch reads its
    incidents ahead in one statement; a second event for an incident already handled
    in the batch reads it afresh (not as it was before its crew was sent, nor before
    it was found short of crews)."""
    from pingan.actions import sync_roster
    from pingan.crews import load_roster
    from streams import handlers
    from tests.conftest import ROSTER

    def staffed_incidents(name: str) -> tuple[Store, list[dict]]:
        store = Store(f"sqlite:///{tmp_path / name}")
        store.create_schema()
        sync_roster(store, load_roster(ROSTER), NOW)
        for event in _report_events(store, 12):
            handlers.handle_report_accepted(store, registry.index, event, NOW)
        with store.read() as conn:
            opened = [
                dict(p)
                for p in conn.execute(
                    select(outbox.c.payload).where(outbox.c.topic == topics.INCIDENTS)
                ).scalars()
            ]
        again = {
            "event_id": "again-1",
            "type": "incident.dispatch",
            "incident_id": opened[0]["incident_id"],
            "occasion": "need",
        }
        # A retry for an incident the batch has just found short of crews: it must see
        # the flag the batch set (not yet written), or its supervisor hears twice.
        retry = again | {
            "event_id": "again-2",
            "incident_id": opened[-1]["incident_id"],
            "occasion": "restaff",
        }
        return store, [opened[0], again, *opened[1:], retry]

    one_by_one, events = staffed_incidents("single.db")
    for event in events:
        handlers.handle_incident_event(one_by_one, event, NOW)
    batched, events = staffed_incidents("batch.db")
    reads: list[str] = []

    def count_reads(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
        if statement.startswith("SELECT") and "FROM incidents" in statement:
            reads.append(statement)

    sa_event.listen(batched.engine, "before_cursor_execute", count_reads)
    handlers.apply_batch(batched, handlers.DISPATCH, handlers.apply_incident_event, events, NOW)
    sa_event.remove(batched.engine, "before_cursor_execute", count_reads)

    def assigned(store: Store) -> list[tuple]:
        with store.read() as conn:
            return [
                tuple(r)
                for r in conn.execute(
                    select(assignments.c.incident_id, assignments.c.crew_id).order_by(
                        assignments.c.id
                    )
                )
            ]

    def flagged(store: Store) -> tuple[list[int], int]:
        with store.read() as conn:
            unstaffed = conn.execute(
                select(incidents.c.id).where(incidents.c.unstaffed == 1).order_by(incidents.c.id)
            )
            alerts = conn.execute(select(func.count()).select_from(staff_alerts)).scalar_one()
            return list(unstaffed.scalars()), alerts

    assert len(events) == 14
    assert assigned(batched) == assigned(one_by_one)
    assert flagged(batched) == flagged(one_by_one)
    assert len(flagged(batched)[0]) == 10
    # All twelve read ahead at once; the later events' incidents read again alone.
    assert len(reads) == 3, reads
    # The load mattered: the two crews ran out of capacity long before the incidents.
    assert Counter(crew for _, crew in assigned(batched)) == {"tree-near": 1, "tree-far": 1}


def test_a_batch_chosen_as_a_deadlock_victim_is_retried_whole(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """On PostgreSQL two batches (two agents, or two workers) can lock incidents in
    opposite orders; the one PostgreSQL aborts is applied whole again once the other
    has gone on, not taken apart into a transaction per event."""
    from pingan.store import claim_event, mark_component, record_audit
    from streams.app import _apply_batch
    from streams.watchdog import Watchdog

    lock = text("SELECT name FROM components WHERE name = :n FOR UPDATE")
    both_hold_one, attempts = threading.Barrier(2, timeout=10), []

    def apply(conn, event, now) -> None:  # type: ignore[no-untyped-def]
        if not claim_event(conn, "deadlock-test", event["event_id"], now):
            return
        if event["event_id"] == "e1":
            attempts.append(1)
            conn.execute(lock, {"n": "row-a"})
            if len(attempts) == 1:  # the first attempt walks into the rival
                both_hold_one.wait()
                conn.execute(lock, {"n": "row-b"})
        record_audit(conn, now, "test", "test.applied", "event", event["event_id"])

    def rival(store: Store) -> None:
        with store.transaction() as conn:
            conn.execute(lock, {"n": "row-b"})
            both_hold_one.wait()
            time.sleep(0.5)  # the batch waits longer, so its deadlock check runs first
            conn.execute(lock, {"n": "row-a"})

    with fresh_postgres_database() as url:
        store = Store(url)
        store.create_schema()
        for name in ("row-a", "row-b"):
            mark_component(store, name, "test")
        commits: list[int] = []
        store.on_emit.append(lambda: commits.append(1))
        other = threading.Thread(target=rival, args=(store,))
        other.start()
        watchdog = Watchdog(store, 60, exit_process=lambda code: None)
        events = [{"event_id": "e1"}, {"event_id": "e2"}]
        with caplog.at_level(logging.INFO, logger="pingan.streams"):
            asyncio.run(_apply_batch(store, "deadlock-test", events, apply, watchdog))
        other.join(10)
        with store.read() as conn:
            applied = conn.execute(
                select(audit.c.entity_id).where(audit.c.action == "test.applied")
            ).scalars()
            applied = sorted(applied)
        store.dispose()
    assert attempts == [1, 1]  # deadlocked once, then applied whole
    assert applied == ["e1", "e2"]
    assert "batch of 2 retried" in caplog.text
    assert "one at a time" not in caplog.text

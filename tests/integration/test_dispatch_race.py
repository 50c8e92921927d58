"""The console's "dispatch now" racing the dispatch agent on one incident, on
PostgreSQL (where both run at once in separate processes): the incident's row lock
makes the second wait for the first and then find the incident staffed, so the crew
needed is sent once, not twice."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from pingan.actions import sync_roster
from pingan.core import topics
from pingan.crews import load_roster
from pingan.dispatch.commands import dispatch_now
from pingan.dispatch.staffing import dispatch_for_level
from pingan.intake.accept import accept_report
from pingan.store import Store
from pingan.store.schema import assignments
from streams import handlers
from tests.conftest import NOW, ROSTER, fresh_postgres_database
from tests.integration.test_handlers import draft, events


@pytest.fixture
def postgres_staffed_store() -> Iterator[Store]:
    with fresh_postgres_database() as url:
        store = Store(url)
        store.create_schema()
        sync_roster(store, load_roster(ROSTER), NOW)
        yield store
        store.dispose()


def test_console_and_agent_never_staff_one_incident_twice(
    postgres_staffed_store: Store,
    index,  # type: ignore[no-untyped-def]
) -> None:
    store = postgres_staffed_store
    accept_report(store, draft(phone=""), "open311", "test", NOW)
    for event in events(store, topics.REPORTS):
        handlers.handle_report_accepted(store, index, event, NOW)
    [opened] = [e for e in events(store, topics.INCIDENTS) if e["type"] == "incident.opened"]
    incident_id = opened["incident_id"]

    agent_planned = threading.Event()
    console_done = threading.Event()
    console_result: list[bool] = []

    def console() -> None:
        agent_planned.wait(10)
        console_result.append(dispatch_now(store, incident_id, "dispatcher", NOW))
        console_done.set()

    racer = threading.Thread(target=console)
    racer.start()
    # The agent plans and writes its crew, then holds its transaction open while the
    # console asks: without the row lock the console would read no assignment yet
    # (its snapshot cannot see uncommitted rows) and send a second crew.
    with store.transaction() as conn:
        dispatch_for_level(conn, incident_id, NOW)
        agent_planned.set()
        assert not console_done.wait(1.0), "the console did not wait for the agent's lock"
    racer.join(10)
    assert console_result == [True]
    with store.read() as conn:
        crews = conn.execute(
            select(assignments.c.crew_id).where(assignments.c.incident_id == incident_id)
        ).all()
    assert len(crews) == 1, crews

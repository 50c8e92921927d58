"""Agents unit-tested with faust's test_context (no broker): they hand events to the
handlers, survive malformed events, and reject them once."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import select

from alerts.channels.local_outbox import LocalOutboxChannel
from pingan.core import topics
from pingan.intake.accept import accept_report
from pingan.settings import Settings
from pingan.store import Store
from pingan.store.schema import audit, incidents, outbox
from streams.app import build_app
from tests.conftest import NOW
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

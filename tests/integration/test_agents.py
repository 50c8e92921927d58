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

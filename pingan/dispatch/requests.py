"""Asking for a dispatch from outside the dispatch agent (the escalation timers, the
clock tick): an event on the incident's own partition, so every change to one
incident's crews happens in order, in one place."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, select

from pingan.core import topics
from pingan.core.dispatch import (
    Occasion,
)
from pingan.store import emit, new_event_id
from pingan.store.schema import (
    outbox,
    processed_events,
)

# Restaff events the clock tick issues carry this prefix, so a pending one is found.
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


def request_dispatch(conn: Connection, incident_id: int, occasion: Occasion, now: datetime) -> None:
    """Queue a dispatch of `incident_id` for the agent, in the caller's transaction."""
    restaff = occasion is Occasion.RESTAFF
    emit(
        conn,
        topics.INCIDENTS,
        str(incident_id),
        {"type": "incident.dispatch", "incident_id": incident_id, "occasion": occasion.value},
        now,
        # A pending restaff is found by this prefix, so the tick never queues two.
        event_id=f"{RESTAFF_EVENT_PREFIX}{incident_id}-{new_event_id()}" if restaff else None,
    )

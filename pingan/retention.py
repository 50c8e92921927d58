"""Retention: the outbox, the processed-event marks and held delivery receipts are
working state, not the record (incidents, reports, assignments, sends and the audit
stay). They are kept for `retention_days`, which must exceed the broker's topic
retention (Kafka keeps 7 days by default): an event the broker could still redeliver
keeps its processed mark. A receipt held that long names no message of ours."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, select

from pingan.store import Store
from pingan.store.schema import held_receipts, outbox, processed_events

BATCH = 5000  # rows per transaction, so a first prune never holds a long lock


@dataclass(frozen=True)
class Pruned:
    outbox: int
    processed: int
    held_receipts: int = 0


def prune(store: Store, now: datetime, keep_days: float) -> Pruned:
    """Delete outbox rows older than the cutoff that were published and processed, then
    processed marks older than the cutoff whose event is no longer in the outbox.
    Unpublished or unprocessed events are never deleted: the relay still owes them."""
    cutoff = now - timedelta(days=keep_days)
    processed_mark = (
        select(processed_events.c.event_id)
        .where(processed_events.c.event_id == outbox.c.event_id)
        .exists()
    )
    done_events = (
        select(outbox.c.id)
        .where(outbox.c.created_at < cutoff, outbox.c.published_at.is_not(None), processed_mark)
        .order_by(outbox.c.id)
        .limit(BATCH)
    )
    in_outbox = select(outbox.c.id).where(outbox.c.event_id == processed_events.c.event_id).exists()
    old_marks = (
        select(processed_events.c.event_id, processed_events.c.consumer)
        .where(processed_events.c.at < cutoff, ~in_outbox)
        .limit(BATCH)
    )
    outbox_deleted = processed_deleted = 0
    while True:
        with store.transaction() as conn:
            ids = conn.execute(done_events).scalars().all()
            if ids:
                conn.execute(delete(outbox).where(outbox.c.id.in_(ids)))
        outbox_deleted += len(ids)
        if len(ids) < BATCH:
            break
    while True:
        with store.transaction() as conn:
            keys = conn.execute(old_marks).all()
            if keys:
                conn.execute(
                    delete(processed_events).where(
                        processed_events.c.event_id == bindparam("e"),
                        processed_events.c.consumer == bindparam("c"),
                    ),
                    [{"e": event_id, "c": consumer} for event_id, consumer in keys],
                )
        processed_deleted += len(keys)
        if len(keys) < BATCH:
            break
    with store.transaction() as conn:
        stale = conn.execute(delete(held_receipts).where(held_receipts.c.received_at < cutoff))
    return Pruned(outbox_deleted, processed_deleted, int(stale.rowcount or 0))

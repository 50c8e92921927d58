"""The outbox relay: publishes events that state changes wrote to the outbox table.

The database is the system of record and the embedded broker keeps topics in memory,
so the relay also refills a fresh broker: at start, and for events published long ago
that no consumer has processed yet, it clears `published_at` and publishes again.
Consumers are idempotent by event id, so a second copy changes nothing."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from datetime import datetime, timedelta

from sqlalchemy import and_, select, update

from pingan.clock import utcnow
from pingan.retention import prune
from pingan.store import LEASE_RENEW_S, LEASE_S, Store, mark_component, take_lease
from pingan.store.schema import outbox, processed_events

log = logging.getLogger("pingan.relay")
BATCH = 500
PRUNE_EVERY = timedelta(hours=1)


class OutboxRelay:
    def __init__(self, store: Store, bootstrap: str) -> None:
        self.store = store
        self.bootstrap = bootstrap
        self.producer = self._producer()

    def _producer(self):  # type: ignore[no-untyped-def]
        from kafka import KafkaProducer

        # No idempotent producer: its producer id would not survive a restarted
        # embedded broker, and consumers are idempotent by event id anyway.
        return KafkaProducer(
            enable_idempotence=False,
            bootstrap_servers=self.bootstrap,
            client_id="pingan-relay",
            acks="all",
            linger_ms=5,
            key_serializer=lambda k: k.encode(),
            value_serializer=lambda v: json.dumps(v, ensure_ascii=False).encode(),
        )

    def publish_pending(self) -> int:
        with self.store.read() as conn:
            rows = conn.execute(
                select(outbox.c.id, outbox.c.topic, outbox.c.key, outbox.c.payload)
                .where(outbox.c.published_at.is_(None))
                .order_by(outbox.c.id)
                .limit(BATCH)
            ).all()
        if not rows:
            return 0
        futures = [self.producer.send(r.topic, key=r.key, value=r.payload) for r in rows]
        self.producer.flush()
        for future in futures:
            future.get(timeout=10)  # raises if the broker refused one
        with self.store.transaction() as conn:
            conn.execute(
                update(outbox)
                .where(outbox.c.id.in_([r.id for r in rows]))
                .values(published_at=utcnow())
            )
        return len(rows)

    def requeue_unprocessed(self, published_before: datetime | None = None) -> int:
        """Mark published-but-unprocessed events for publishing again."""
        unprocessed = (
            ~select(processed_events.c.event_id)
            .where(processed_events.c.event_id == outbox.c.event_id)
            .exists()
        )
        condition = and_(outbox.c.published_at.is_not(None), unprocessed)
        if published_before is not None:
            condition = and_(condition, outbox.c.published_at < published_before)
        with self.store.transaction() as conn:
            count = conn.execute(update(outbox).where(condition).values(published_at=None)).rowcount
        if count:
            log.info("relay requeued unprocessed events count=%d", count)
        return count

    async def run(
        self,
        stop: asyncio.Event,
        interval_s: float,
        redeliver_after_s: float,
        retention_days: float,
    ) -> None:
        """Publish while this process holds the relay lease (one relay per deployment
        keeps each key's events in order); other relays wait to take over."""
        last_sweep = utcnow()
        last_prune: datetime | None = None
        last_lease: datetime | None = None
        held: bool | None = None  # unknown until the first look at the lease
        while not stop.is_set():
            sent = 0
            try:
                now = utcnow()
                if last_lease is None or (now - last_lease).total_seconds() >= LEASE_RENEW_S:
                    last_lease = now
                    holds = await asyncio.to_thread(take_lease, self.store, "relay", LEASE_S, now)
                    if holds != held:
                        log.info(
                            "relay %s",
                            "publishing"
                            if holds
                            else "standing by (another relay holds the lease)",
                        )
                    held = holds
                if held:
                    sent = await asyncio.to_thread(self.publish_pending)
                    if sent:
                        log.debug("relay published count=%d", sent)
                    if (now - last_sweep).total_seconds() >= redeliver_after_s / 4:
                        last_sweep = now
                        cutoff = now - timedelta(seconds=redeliver_after_s)
                        await asyncio.to_thread(self.requeue_unprocessed, cutoff)
                    if last_prune is None or now - last_prune >= PRUNE_EVERY:
                        last_prune = now
                        pruned = await asyncio.to_thread(prune, self.store, now, retention_days)
                        if pruned.outbox or pruned.processed:
                            log.info(
                                "relay pruned outbox=%d processed_marks=%d older_than_days=%s",
                                pruned.outbox,
                                pruned.processed,
                                retention_days,
                            )
            except Exception as exc:  # keep relaying; the rows stay pending
                log.error("relay error (will retry): %s", exc)
                sent = 0
            if not sent:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=interval_s)
        if held:
            await asyncio.to_thread(mark_component, self.store, "relay", "stopped")

    def reconnect(self) -> None:
        """After the broker was replaced: a new producer, and everything not yet
        processed published again."""
        old, self.producer = self.producer, self._producer()
        old.close(timeout=2)
        self.requeue_unprocessed()

    def close(self) -> None:
        self.producer.close(timeout=5)

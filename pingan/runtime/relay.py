"""The outbox relay: publishes events that state changes wrote to the outbox table.

The database is the system of record and the embedded broker keeps topics in memory,
so the relay also refills a fresh broker: at start, everything no consumer has
processed yet is published again. Later, an event still unprocessed long after it was
published is published again only once the consumer group has committed past its
offset (its handler failed); one merely waiting in a backlog is left alone, so
redelivery never grows the backlog it waits in. Consumers are idempotent by event id,
so a second copy changes nothing."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from datetime import datetime, timedelta
from typing import Any

from kafka.serializer import DefaultSerializer
from sqlalchemy import and_, bindparam, or_, select, text, update

from pingan.clock import utcnow
from pingan.core.topics import CONSUMER_GROUP
from pingan.retention import prune
from pingan.store import LEASE_RENEW_S, LEASE_S, Store, mark_component, take_lease
from pingan.store.schema import outbox, processed_events

log = logging.getLogger("pingan.relay")
BATCH = 500
# PostgreSQL: a batch's rows marked in one statement, where each is (partition, offset).
_MARK_PUBLISHED = text(
    "UPDATE outbox SET published_at = :now, kafka_partition = placed.partition, "
    "kafka_offset = placed.kafka_offset FROM unnest(CAST(:ids AS INTEGER[]), "
    "CAST(:partitions AS INTEGER[]), CAST(:offsets AS BIGINT[])) "
    "AS placed(id, partition, kafka_offset) WHERE outbox.id = placed.id"
)
PRUNE_EVERY = timedelta(hours=1)


class _EventSerializer(DefaultSerializer):
    """Events as UTF-8 JSON, Chinese kept readable."""

    def serialize(self, topic: str, headers: Any, data: Any) -> bytes:
        return json.dumps(data, ensure_ascii=False).encode()


class OutboxRelay:
    def __init__(self, store: Store, bootstrap: str, group: str = CONSUMER_GROUP) -> None:
        self.store = store
        self.bootstrap = bootstrap
        self.group = group
        self.producer = self._producer()
        self._admin = None  # made when first needed: the broker may not be up yet

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
            key_serializer=DefaultSerializer(),
            value_serializer=_EventSerializer(),
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
        # .get raises if the broker refused one; then none is marked and all go again.
        placed = [(r.id, f.get(timeout=10)) for r, f in zip(rows, futures, strict=True)]
        now = utcnow()
        with self.store.transaction() as conn:
            if conn.dialect.name == "postgresql":  # one statement, not one per row
                conn.execute(
                    _MARK_PUBLISHED,
                    {
                        "now": now,
                        "ids": [row_id for row_id, _ in placed],
                        "partitions": [meta.partition for _, meta in placed],
                        "offsets": [meta.offset for _, meta in placed],
                    },
                )
            else:
                conn.execute(
                    update(outbox)
                    .where(outbox.c.id == bindparam("row_id"))
                    .values(
                        published_at=now,
                        kafka_partition=bindparam("partition"),
                        kafka_offset=bindparam("offset"),
                    ),
                    [
                        {"row_id": row_id, "partition": meta.partition, "offset": meta.offset}
                        for row_id, meta in placed
                    ],
                )
        return len(rows)

    def committed_offsets(self) -> dict[tuple[str, int], int]:
        """Where the worker's consumer group has committed, per (topic, partition)."""
        from kafka.admin import KafkaAdminClient

        if self._admin is None:
            self._admin = KafkaAdminClient(
                bootstrap_servers=self.bootstrap, client_id="pingan-relay-admin"
            )
        try:
            offsets = self._admin.list_group_offsets({self.group: None}).get(self.group, {})
        except Exception:
            self._close_admin()
            raise
        # -1: the group has no offset there (it never committed on that partition)
        return {
            (tp.topic, tp.partition): meta.offset
            for tp, meta in offsets.items()
            if meta.offset >= 0
        }

    def requeue_unprocessed(
        self,
        published_before: datetime | None = None,
        committed: dict[tuple[str, int], int] | None = None,
    ) -> int:
        """Mark published-but-unprocessed events for publishing again: all of them
        (a fresh broker), or those published before `published_before` that the
        consumer group has already committed past (`committed`)."""
        unprocessed = (
            ~select(processed_events.c.event_id)
            .where(processed_events.c.event_id == outbox.c.event_id)
            .exists()
        )
        condition = and_(outbox.c.published_at.is_not(None), unprocessed)
        if published_before is not None:
            passed = [
                and_(
                    outbox.c.topic == topic,
                    outbox.c.kafka_partition == partition,
                    outbox.c.kafka_offset < offset,
                )
                for (topic, partition), offset in (committed or {}).items()
            ]
            condition = and_(
                condition,
                outbox.c.published_at < published_before,
                # Published before offsets were recorded: judged by age alone.
                or_(outbox.c.kafka_offset.is_(None), *passed),
            )
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
        loop = asyncio.get_running_loop()
        wake = asyncio.Event()

        def on_emit() -> None:
            loop.call_soon_threadsafe(wake.set)

        self.store.on_emit.append(on_emit)

        async def wake_on_stop() -> None:
            await stop.wait()
            wake.set()

        stop_watch = asyncio.create_task(wake_on_stop())
        last_sweep = utcnow()
        last_publish = 0.0
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
                    # Under a storm every commit wakes us: gather for at most one
                    # interval, so publishing costs one write per batch, not per event.
                    since = time.monotonic() - last_publish
                    if since < interval_s:
                        await asyncio.sleep(interval_s - since)
                    last_publish = time.monotonic()
                    sent = await asyncio.to_thread(self.publish_pending)
                    if sent:
                        log.debug("relay published count=%d", sent)
                    if (now - last_sweep).total_seconds() >= redeliver_after_s / 4:
                        last_sweep = now
                        cutoff = now - timedelta(seconds=redeliver_after_s)
                        committed = await asyncio.to_thread(self.committed_offsets)
                        await asyncio.to_thread(self.requeue_unprocessed, cutoff, committed)
                    if last_prune is None or now - last_prune >= PRUNE_EVERY:
                        last_prune = now
                        pruned = await asyncio.to_thread(prune, self.store, now, retention_days)
                        if pruned.outbox or pruned.processed or pruned.held_receipts:
                            log.info(
                                "relay pruned outbox=%d processed_marks=%d held_receipts=%d "
                                "older_than_days=%s",
                                pruned.outbox,
                                pruned.processed,
                                pruned.held_receipts,
                                retention_days,
                            )
            except Exception as exc:  # keep relaying; the rows stay pending
                log.error("relay error (will retry): %s", exc)
                sent = 0
            if not sent and not stop.is_set():
                # A commit in this process wakes us at once; the worker's own events
                # (another process) are found by the next look, interval_s later.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), timeout=interval_s)
                wake.clear()
        stop_watch.cancel()
        self.store.on_emit.remove(on_emit)
        if held:
            await asyncio.to_thread(mark_component, self.store, "relay", "stopped")

    def reconnect(self) -> None:
        """After the broker was replaced: a new producer, and everything not yet
        processed published again."""
        old, self.producer = self.producer, self._producer()
        old.close(timeout=2)
        self._close_admin()
        self.requeue_unprocessed()

    def _close_admin(self) -> None:
        if self._admin is not None:
            with contextlib.suppress(Exception):
                self._admin.close()
            self._admin = None

    def close(self) -> None:
        self._close_admin()
        self.producer.close(timeout=5)

"""The outbox relay against the embedded broker: it records where each event went,
and re-publishes an unprocessed event only once the consumer group has passed it, so
a backlog is never fed with copies of itself."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata
from sqlalchemy import select, update

from pingan.clock import utcnow
from pingan.runtime.broker import (
    EmbeddedBroker,
    ensure_topics,
    resolve_broker_bin,
    start_embedded_broker,
)
from pingan.runtime.relay import OutboxRelay
from pingan.store import Store, claim_event, emit
from pingan.store.schema import outbox
from tests.conftest import NOW


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    log = tmp_path_factory.mktemp("broker") / "broker.log"
    running = start_embedded_broker(resolve_broker_bin(""), log)
    yield running
    running.stop()


def _commit(bootstrap: str, group: str, topic: str, offset: int) -> None:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.commit({tp: OffsetAndMetadata(offset, "", -1)})
    finally:
        consumer.close()


def _published(store: Store) -> dict[str, tuple[object, int | None, int | None]]:
    with store.read() as conn:
        rows = conn.execute(
            select(
                outbox.c.event_id,
                outbox.c.published_at,
                outbox.c.kafka_partition,
                outbox.c.kafka_offset,
            ).order_by(outbox.c.id)
        ).all()
    return {r.event_id: (r.published_at, r.kafka_partition, r.kafka_offset) for r in rows}


def test_only_events_the_group_passed_are_published_again(
    store: Store, broker: EmbeddedBroker, tmp_path: Path
) -> None:
    topic, group = f"relay-{uuid.uuid4().hex[:8]}", f"group-{uuid.uuid4().hex[:8]}"
    ensure_topics(broker.bootstrap, (topic,), 1)
    with store.transaction() as conn:
        done, failed, waiting = (
            emit(conn, topic, "k", {"type": "t", "n": n}, NOW, event_id=f"{name}-{topic}")
            for n, name in enumerate(("done", "failed", "waiting"))
        )
    relay = OutboxRelay(store, broker.bootstrap, group=group)
    try:
        assert relay.publish_pending() == 3
        placed = _published(store)
        assert [(p, o) for _, p, o in placed.values()] == [(0, 0), (0, 1), (0, 2)]
        assert all(at is not None for at, _, _ in placed.values())

        # The worker handled `done`, failed on `failed` (it moved on, as it does), and
        # has not reached `waiting`: its group committed offset 2.
        with store.transaction() as conn:
            claim_event(conn, "incidents", done, NOW)
        _commit(broker.bootstrap, group, topic, 2)
        committed = relay.committed_offsets()
        assert committed[(topic, 0)] == 2

        later = utcnow() + timedelta(minutes=5)  # published at utcnow()
        assert relay.requeue_unprocessed(later, committed) == 1
        after = _published(store)
        assert after[failed][0] is None  # published again
        assert after[waiting][0] is not None  # still waits in the backlog: no copy
        assert after[done][0] is not None

        # Nothing is older than the cutoff: nothing goes again, whatever the offsets.
        assert relay.requeue_unprocessed(utcnow() - timedelta(hours=1), committed) == 0
        # A fresh broker (restart): every unprocessed event goes again.
        assert relay.requeue_unprocessed() == 1  # `waiting`; `failed` is already pending
        assert relay.publish_pending() == 2
        offsets = {e: o for e, (_, _, o) in _published(store).items()}
        assert offsets[failed] == 3 and offsets[waiting] == 4
    finally:
        relay.close()


def test_a_group_that_never_committed_gets_no_copies(store: Store, broker: EmbeddedBroker) -> None:
    topic, group = f"relay-{uuid.uuid4().hex[:8]}", f"group-{uuid.uuid4().hex[:8]}"
    ensure_topics(broker.bootstrap, (topic,), 1)
    with store.transaction() as conn:
        emit(conn, topic, "k", {"type": "t"}, NOW)
    relay = OutboxRelay(store, broker.bootstrap, group=group)
    try:
        relay.publish_pending()
        committed = relay.committed_offsets()
        assert (topic, 0) not in committed
        assert relay.requeue_unprocessed(utcnow() + timedelta(minutes=5), committed) == 0
        # An event published before offsets were recorded is judged by its age alone.
        with store.transaction() as conn:
            conn.execute(update(outbox).values(kafka_partition=None, kafka_offset=None))
        assert relay.requeue_unprocessed(utcnow() + timedelta(minutes=5), committed) == 1
    finally:
        relay.close()


def test_a_commit_that_emitted_wakes_the_relay_and_nothing_else_does(store: Store) -> None:
    woken: list[int] = []
    store.on_emit.append(lambda: woken.append(1))
    with store.transaction() as conn:
        claim_event(conn, "incidents", "no-events-here", NOW)
    assert woken == []
    with pytest.raises(RuntimeError), store.transaction() as conn:
        emit(conn, "t", "k", {"type": "t"}, NOW)
        raise RuntimeError("rolled back: nothing to publish")
    assert woken == []
    with store.transaction() as conn:
        emit(conn, "t", "k", {"type": "t"}, NOW)
        emit(conn, "t", "k", {"type": "t"}, NOW)
    assert woken == [1]  # once per commit
    with store.transaction() as conn:
        claim_event(conn, "incidents", "still-none", NOW)
    assert woken == [1]  # the flag does not outlive its transaction on a pooled connection

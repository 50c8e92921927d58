"""The Faust app and its agents. Each agent is a loop that hands its events to a
handler in streams/handlers.py: in batches, one transaction each, where the handler
only writes (reports, weather, dispatch, crew progress, messages queued in the ledger,
which the sender, alerts/pipeline.py, a task of this app, sends: no agent waits on a
provider); one at a time for calls and warning chunks. Nothing else lives here.

Agents run with concurrency=1: faust can commit past an in-flight message with more,
and we prefer at-least-once delivery plus idempotent handlers."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import faust

from alerts.channels.base import Channel
from alerts.pipeline import Sender
from pingan.clock import utcnow
from pingan.core import topics
from pingan.dispatch.timers import fire_due_timers
from pingan.links import CrewLinks
from pingan.metrics import EVENTS_FAILED, EVENTS_PROCESSED
from pingan.settings import Settings
from pingan.store import Store, mark_component
from playbooks.registry import PlaybookRegistry
from streams import calls, handlers
from streams.broker_tuning import set_fetch_wait
from streams.watchdog import Watchdog

log = logging.getLogger("pingan.streams")


def kafka_broker_url(url: str) -> str:
    return url if "://" in url else f"kafka://{url}"


@dataclass
class Worker:
    app: faust.App
    agents: dict[str, Any]
    watchdog: Watchdog
    sender: Sender


async def _apply_batch(
    store: Store,
    consumer: str,
    events: list[Any],
    apply: handlers.Apply,
    watchdog: Watchdog,
) -> None:
    """Apply a batch of one partition's events in one transaction. If any of them fails
    the batch is undone and each event taken alone, so a malformed or failing event is
    rejected or left for redelivery without holding back the good ones beside it."""
    if len(events) > 1 and all(isinstance(e, dict) for e in events):
        for attempt in (1, 2):
            try:
                with watchdog.handling(consumer):
                    await asyncio.to_thread(
                        handlers.apply_batch, store, consumer, apply, events, utcnow()
                    )
                EVENTS_PROCESSED.labels(consumer).inc(len(events))
                return
            except Exception as exc:
                # PostgreSQL chose this batch as a deadlock's victim (two agents or
                # workers locking incidents in another order): the other has gone on,
                # so the batch whole again, once, before it is taken apart.
                if attempt == 1 and _lost_a_lock_race(exc):
                    log.info("agent=%s batch of %d retried: %s", consumer, len(events), exc)
                    continue
                log.warning(
                    "agent=%s batch of %d failed (%s); taking its events one at a time",
                    consumer,
                    len(events),
                    exc,
                )
                break
    for event in events:
        await _apply(
            store,
            consumer,
            event,
            lambda e: handlers.in_transaction(store, apply, e, utcnow()),
            watchdog,
        )


def _lost_a_lock_race(exc: Exception) -> bool:
    """A deadlock or serialization failure: nothing wrong with the events themselves."""
    code = getattr(getattr(exc, "orig", None), "sqlstate", None)
    return code in ("40P01", "40001")


async def _apply(
    store: Store,
    consumer: str,
    event: Any,
    handler: Callable[[Any], Any],
    watchdog: Watchdog,
) -> None:
    """Run one handler on one event. A malformed event is rejected (audited, never
    retried); any other failure is logged and the event left unclaimed, so the relay
    delivers it again later. Either way the stream keeps moving."""
    try:
        with watchdog.handling(consumer):
            if not isinstance(event, dict):
                raise handlers.BadEvent(f"not a JSON object: {str(event)[:200]!r}")
            # Database work runs off the event loop, so heartbeats, timers and the
            # other agents keep going while one handler waits on a lock or a disk.
            result = await asyncio.to_thread(handler, event)
            if inspect.isawaitable(result):
                await result
        EVENTS_PROCESSED.labels(consumer).inc()
    except handlers.BadEvent as exc:
        EVENTS_FAILED.labels(consumer, "rejected").inc()
        log.error("agent=%s rejected event: %s", consumer, exc)
        handlers.reject_event(store, consumer, event, str(exc), utcnow())
    except calls.RetryLater as exc:  # a call's provider is down: no traceback
        EVENTS_FAILED.labels(consumer, "retry_later").inc()
        log.warning("agent=%s will try again later: %s", consumer, exc)
    except Exception:
        EVENTS_FAILED.labels(consumer, "error").inc()
        log.exception(
            "agent=%s failed on event=%s (will be redelivered)",
            consumer,
            event.get("event_id") if isinstance(event, dict) else None,
        )


def build_app(
    settings: Settings,
    store: Store,
    registry: PlaybookRegistry,
    channel: Channel,
    app_id: str = topics.CONSUMER_GROUP,
    links: CrewLinks | None = None,
    channels: dict[str, Channel] | None = None,
    tick_interval_s: float = 15.0,
    reload_interval_s: float = 2.0,
) -> Worker:
    channels = channels or {"sms": channel, "wechat": channel}
    # Every message goes out through one sender (alerts/pipeline.py): the agents only
    # queue, so none waits on a provider, and pending messages are retried from the ledger.
    sender = Sender(store, channels)
    set_fetch_wait(settings.broker_fetch_wait_ms)
    app = faust.App(
        app_id,
        broker=kafka_broker_url(settings.kafka_url or "127.0.0.1:9092"),
        store="memory://",
        web_enabled=False,
        broker_session_timeout=settings.broker_session_timeout_s,
        broker_heartbeat_interval=1.0,
        # Not a liveness check here: Faust stops polling while its buffers are full,
        # and a consumer that aiokafka saw idle this long leaves the group for good
        # (see streams/liveness.py). The watchdog below judges real progress.
        broker_max_poll_interval=settings.worker_max_poll_interval_s,
        consumer_auto_offset_reset="earliest",
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication_factor,
        producer_acks=-1,
    )

    def topic(name: str) -> faust.TopicT:
        return app.topic(name, value_serializer="json", partitions=settings.topic_partitions)

    # consumer name (its idempotency scope) -> (topic, what it does to one event in a
    # transaction); these take their events in batches, one transaction per batch.
    batched: dict[str, tuple[str, handlers.Apply]] = {
        handlers.INCIDENTS: (
            topics.REPORTS,
            lambda conn, e, now: handlers.apply_report_accepted(conn, registry.index, e, now),
        ),
        handlers.WEATHER: (
            topics.WEATHER,
            lambda conn, e, now: handlers.apply_weather_event(conn, registry.index, e, now),
        ),
        handlers.DISPATCH: (topics.INCIDENTS, handlers.apply_incident_event),
        handlers.PROGRESS: (topics.CREW_EVENTS, handlers.apply_crew_event),
        # Queues messages in the ledger; the sender, woken after each batch, sends them.
        handlers.NOTIFY: (
            topics.NOTIFICATIONS,
            lambda conn, e, now: handlers.apply_notification(conn, e, now, links),
        ),
    }
    # These go one event at a time: a call is placed before its event is claimed, and a
    # chunk's rendering of thousands of messages is a transaction on its own.
    routes: dict[str, tuple[str, Callable[[dict[str, Any]], Any]]] = {
        "calls": (
            topics.CALLS,
            lambda e: calls.handle_call(
                store, channels.get("voice"), e, utcnow(), settings.effective_public_url
            ),
        ),
        "sends-urgent": (
            topics.SENDS_URGENT,
            lambda e: handlers.handle_send_chunk(store, sender, e, utcnow()),
        ),
        "sends-routine": (
            topics.SENDS_ROUTINE,
            lambda e: handlers.handle_send_chunk(store, sender, e, utcnow()),
        ),
    }
    watchdog = Watchdog(store, settings.worker_stall_after_s)
    agents = {
        consumer: _agent(app, topic(name), store, consumer, handler, watchdog)
        for consumer, (name, handler) in routes.items()
    }
    batch = (settings.worker_batch_max, settings.worker_batch_wait_ms / 1000)
    agents |= {
        consumer: _batch_agent(
            app,
            topic(name),
            store,
            consumer,
            apply,
            watchdog,
            batch,
            after=sender.wake if consumer == handlers.NOTIFY else None,
        )
        for consumer, (name, apply) in batched.items()
    }

    @app.task
    async def send_messages() -> None:
        await sender.run(asyncio.Event(), interval_s=1.0)  # until the app stops

    @app.timer(1.0)
    async def sample_liveness() -> None:
        watchdog.take_sample(app.consumer.flow_active)

    @app.timer(tick_interval_s, on_leader=True)
    async def expire_warnings() -> None:
        try:
            await asyncio.to_thread(handlers.handle_clock_tick, store, registry.index, utcnow())
        except Exception:
            log.exception("clock tick failed (will try again)")

    @app.timer(1.0, on_leader=True)
    async def fire_timers() -> None:
        try:
            fired = await asyncio.to_thread(
                fire_due_timers, store, utcnow(), calls="voice" in channels
            )
            if fired:
                log.info("timers fired count=%d", fired)
        except Exception:
            log.exception("timers failed (will try again)")

    @app.timer(reload_interval_s)
    async def reload_playbooks() -> None:
        if registry.refresh():
            mark_component(
                store,
                "playbooks",
                "invalid" if registry.error else "ok",
                registry.error or registry.versions(),
            )

    @app.on_rebalance_complete.connect
    async def _report_ready(sender: Any, **kwargs: Any) -> None:
        mark_component(store, "worker", "ready")
        watchdog.ready = True
        log.info("worker ready: partitions assigned")

    return Worker(app, agents, watchdog, sender)


def _agent(
    app: faust.App,
    source: faust.TopicT,
    store: Store,
    consumer: str,
    handler: Callable[[dict[str, Any]], Any],
    watchdog: Watchdog,
) -> Any:
    async def agent(stream: faust.StreamT) -> Any:
        async for event in stream:
            await _apply(store, consumer, event, handler, watchdog)
            yield event

    return app.agent(source, name=f"pingan.{consumer}", concurrency=1)(agent)


def _batch_agent(
    app: faust.App,
    source: faust.TopicT,
    store: Store,
    consumer: str,
    apply: handlers.Apply,
    watchdog: Watchdog,
    batch: tuple[int, float],
    after: Callable[[], None] | None = None,
) -> Any:
    """`after`: called once a batch is applied (the sender's wake-up, for messages)."""
    most, within = batch

    async def agent(stream: faust.StreamT) -> Any:
        # take() acknowledges a batch's events only when the next batch is asked for,
        # so offsets are committed past events that were applied.
        async for events in stream.take(most, within=within):
            await _apply_batch(store, consumer, events, apply, watchdog)
            if after is not None:
                after()
            for event in events:
                yield event

    return app.agent(source, name=f"pingan.{consumer}", concurrency=1)(agent)

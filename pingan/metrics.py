"""Prometheus metrics: what an operator's alerting needs to see inside Ping'an.

Two kinds. Counters of what this process did (events each agent processed or failed,
feed polls) live in the process that did it. The shared state (outbox depth and age,
events waiting per consumer, messages by channel and status, the oldest message not
yet taken by a provider, acknowledgements overdue, who holds each lease) is read from
the database when scraped, so every process reports the same numbers and none keeps
a copy that could drift."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from pingan.clock import utcnow
from pingan.queries import backlog
from pingan.store import Store, as_utc
from pingan.store.schema import assignments, components, sends
from pingan.vocabulary import AssignmentState

log = logging.getLogger("pingan.metrics")

# The process's own registry (not the library's global one), so tests and processes
# never see each other's series.
REGISTRY = CollectorRegistry()
EVENTS_PROCESSED = Counter(
    "pingan_events_processed",
    "Events an agent applied (batches count each event).",
    ["agent"],
    registry=REGISTRY,
)
EVENTS_FAILED = Counter(
    "pingan_events_failed",
    "Events an agent could not apply: rejected as malformed, or left for redelivery.",
    ["agent", "outcome"],
    registry=REGISTRY,
)
FEED_POLLS = Counter(
    "pingan_feed_polls",
    "Weather feed polls, by feed and outcome (ok, down, error).",
    ["feed", "outcome"],
    registry=REGISTRY,
)
# The leases one process per deployment holds (components rows written by take_lease).
LEASES = ("relay", "scheduler")


class SharedStateCollector(Collector):
    """The deployment's state as the database has it, read at each scrape."""

    def __init__(self) -> None:
        self.store: Store | None = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        if self.store is None:
            return
        try:
            with self.store.read() as conn:
                state = read_shared_state(conn, utcnow())
        except Exception as exc:  # a scrape must answer; `up`-style gauge says why
            log.warning("metrics: the database did not answer: %s", exc)
            yield _gauge("pingan_database_up", "1 if the database answered this scrape.", 0)
            return
        yield _gauge("pingan_database_up", "1 if the database answered this scrape.", 1)
        for name, (count, age) in state["backlog"].items():
            yield _gauge(f"pingan_{name}", f"{name.replace('_', ' ').capitalize()}.", count)
            yield _gauge(
                f"pingan_{name}_oldest_age_seconds",
                f"Age of the oldest of pingan_{name}.",
                age,
            )
        messages = GaugeMetricFamily(
            "pingan_messages",
            "Messages in the ledger by channel and status.",
            labels=["channel", "status"],
        )
        for (channel, status), count in sorted(state["messages"].items()):
            messages.add_metric([channel, status], count)
        yield messages
        yield _gauge(
            "pingan_message_pending_oldest_age_seconds",
            "Age of the oldest message no provider has taken yet (0: none pending).",
            state["oldest_pending_s"],
        )
        yield _gauge(
            "pingan_assignments_unacknowledged_past_due",
            "Assignments whose crew has not acknowledged by the playbook's deadline.",
            state["unacked_past_due"],
        )
        leases = GaugeMetricFamily(
            "pingan_lease_held",
            "1 for the process holding each one-per-deployment lease.",
            labels=["lease", "holder"],
        )
        for lease, holder in sorted(state["leases"].items()):
            leases.add_metric([lease, holder], 1)
        yield leases


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def read_shared_state(conn: Any, now: datetime) -> dict[str, Any]:
    """What every process reports: one read of the database."""
    waiting = backlog(conn, now)
    messages = {
        (channel, status): int(count)
        for channel, status, count in conn.execute(
            select(sends.c.channel, sends.c.status, func.count()).group_by(
                sends.c.channel, sends.c.status
            )
        )
    }
    oldest = conn.execute(
        select(func.min(sends.c.created_at)).where(sends.c.status == "pending")
    ).scalar()
    unacked = conn.execute(
        select(func.count()).where(
            assignments.c.state == AssignmentState.ASSIGNED, assignments.c.ack_due_at < now
        )
    ).scalar_one()
    leases = {
        row.name: row.detail
        for row in conn.execute(
            select(components.c.name, components.c.detail).where(
                components.c.name.in_(LEASES), components.c.state == "running"
            )
        )
    }
    return {
        "backlog": {name: (v["count"], v["oldest_age_s"]) for name, v in waiting.items()},
        "messages": messages,
        "oldest_pending_s": (now - as_utc(oldest)).total_seconds() if oldest else 0.0,  # type: ignore[operator]
        "unacked_past_due": int(unacked),
        "leases": leases,
    }


_SHARED = SharedStateCollector()
REGISTRY.register(_SHARED)


def watch_store(store: Store) -> None:
    """Report the shared state of `store` in this process's /metrics."""
    _SHARED.store = store


def exposition() -> bytes:
    """The text format Prometheus scrapes."""
    return generate_latest(REGISTRY)

"""A chunk of a citizen warning: the subscribers in an id range, each once, through
the one notification pipeline (alerts/pipeline.py).

Rendering a chunk writes one pending ledger row per (warning, subscriber, channel) with
insert-or-ignore, so a redelivered chunk or a restart queues nothing twice; the
pipeline sends what is pending, paced per sender, retries what the provider could not
take yet, and hands a message a channel refused for good to the subscriber's other
channel.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from alerts.channels.base import Channel, Message
from alerts.citizen_warnings import RECEIVED, audience_filter
from alerts.pipeline import Due, Outgoing, Sender, of_chunk, queue
from pingan.store import Store
from pingan.store.schema import citizen_warnings, sends, subscribers

log = logging.getLogger("pingan.fanout")


@dataclass
class ChunkResult:
    sent: int = 0
    failed: int = 0
    retry: int = 0
    skipped: int = 0  # no channel for them, or queued before (redelivery)
    failed_over: int = 0
    first_send_at: float | None = None
    errors: list[str] = field(default_factory=list)


def _recipients(conn: Connection, warning: Any, from_id: int, to_id: int) -> list[Any]:
    in_range = subscribers.c.id.between(from_id, to_id)
    if warning.corrects:
        # exactly those who received the original (and have not opted out since)
        received = select(sends.c.subscriber_id).where(
            sends.c.warning_id == warning.corrects,
            sends.c.status.in_(RECEIVED),
            sends.c.subscriber_id.between(from_id, to_id),
        )
        where = subscribers.c.id.in_(received) & subscribers.c.opted_out_at.is_(None)
    else:
        where = in_range & audience_filter(warning.districts)
    return conn.execute(select(subscribers).where(where).order_by(subscribers.c.id)).all()


def _route(sub: Any, allowed: list[str], exclude: str | None = None) -> tuple[str, str] | None:
    """The subscriber's preferred channel this warning uses: (channel, address)."""
    for channel in sub.channels.split(","):
        if channel not in allowed or channel == exclude:
            continue
        if channel == "sms" and sub.phone:
            return "sms", sub.phone
        if channel == "wechat" and sub.openid:
            return "wechat", sub.openid
    return None


def _warning(conn: Connection, warning_id: int) -> Any:
    return conn.execute(select(citizen_warnings).where(citizen_warnings.c.id == warning_id)).first()


def render_chunk(
    conn: Connection, warning_id: int, from_id: int, to_id: int, available: Collection[str]
) -> tuple[list[Outgoing], int]:
    """The chunk's messages, each on the subscriber's first channel this warning uses
    and we have; and how many subscribers had none."""
    warning = _warning(conn, warning_id)
    if warning is None or warning.status not in ("sent",):
        return [], 0
    allowed = [c for c in warning.channels if c in available]
    items, skipped = [], 0
    for sub in _recipients(conn, warning, from_id, to_id):
        route = _route(sub, allowed)
        if route is None:
            skipped += 1
            continue
        items.append(_outgoing(warning, sub, *route))
    return items, skipped


def _outgoing(warning: Any, sub: Any, channel: str, address: str) -> Outgoing:
    text = warning.text_en if sub.language == "en" else warning.text_zh
    return Outgoing(Message(f"w{warning.id}:s{sub.id}", address, text), channel, warning.id, sub.id)


def reroute(conn: Connection, due: Due, available: Collection[str]) -> Outgoing | None:
    """A warning message a channel refused for good: the subscriber's other channel
    this warning uses, if any (the pipeline's fail-over for warnings)."""
    if due.warning_id is None or due.subscriber_id is None:
        return None
    warning = _warning(conn, due.warning_id)
    sub = conn.execute(select(subscribers).where(subscribers.c.id == due.subscriber_id)).first()
    if warning is None or sub is None:
        return None
    route = _route(sub, [c for c in warning.channels if c in available], exclude=due.channel)
    return _outgoing(warning, sub, *route) if route else None


async def send_chunk(
    store: Store,
    channels: Mapping[str, Channel],
    warning_id: int,
    from_id: int,
    to_id: int,
    now: datetime,
    clock: Any = None,
) -> ChunkResult:
    """Queue one chunk and send it now, each message once (and on to the subscriber's
    other channel where one refused it for good). `clock` (a time.perf_counter-like
    callable) records when sending began, for the benchmark."""
    result = ChunkResult()
    with store.transaction() as conn:
        items, result.skipped = render_chunk(conn, warning_id, from_id, to_id, channels)
        keys = {o.message.idempotency_key for o in items}
        before = _queued_before(conn, keys)
        queue(conn, items, now)
    result.skipped += len(before)
    if clock is not None:
        result.first_send_at = clock()
    done = await Sender(store, channels).drain(now, of_chunk(warning_id, from_id, to_id))
    result.sent, result.failed, result.retry = done.sent, done.failed, done.retry
    result.failed_over, result.errors = done.failed_over, done.errors
    return result


def _queued_before(conn: Connection, keys: Collection[str]) -> set[str]:
    """Keys already in the ledger and no longer pending (sent or failed before)."""
    wanted, found = list(keys), set()
    for start in range(0, len(wanted), 900):  # stay under SQLite's parameter limit
        found.update(
            conn.execute(
                select(sends.c.dedup_key).where(
                    sends.c.dedup_key.in_(wanted[start : start + 900]), sends.c.status != "pending"
                )
            ).scalars()
        )
    return found

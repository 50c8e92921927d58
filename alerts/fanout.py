"""Sending one chunk of a citizen warning: the subscribers in an id range, each once.

The ledger row (warning, subscriber, channel) is written before the send, in one batch
per chunk with insert-or-ignore, so a redelivered chunk or a restart sends nothing
twice: only rows still 'pending' are sent. The window no ledger closes alone (the
provider accepted, the 'sent' update not yet written) is the time of one chunk's
sends; after a crash those rows are still 'pending'. A row written by an earlier
attempt is first looked up with a channel that can (Twilio: by recipient and time),
so what the provider already took is recorded, not sent again; the local and
in-process channels are idempotent by key.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from alerts.channels.base import Channel, Message, PermanentError, Reconciling, RetryableError
from alerts.citizen_warnings import RECEIVED, audience_filter, card_of
from alerts.ledger import release_held_receipts, taken_before
from pingan.store import Store, as_utc
from pingan.store.schema import citizen_warnings, sends, subscribers

log = logging.getLogger("pingan.fanout")
CONCURRENCY = 500  # sends in flight per chunk


@dataclass
class ChunkResult:
    sent: int = 0
    failed: int = 0
    retry: int = 0
    skipped: int = 0  # already sent before (redelivery)
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


def _insert_ignore(store: Store):  # type: ignore[no-untyped-def]
    return (sqlite_insert if store.is_sqlite else pg_insert)(sends)


def _ledger(store: Store, rows: list[dict[str, Any]]) -> dict[str, datetime]:
    """Write pending rows (ignoring ones already there); return the keys still to send,
    each with when its row was first written."""
    if not rows:
        return {}
    with store.transaction() as conn:
        stmt = _insert_ignore(store).on_conflict_do_nothing(index_elements=["dedup_key", "channel"])
        conn.execute(stmt, rows)
        keys = [r["dedup_key"] for r in rows]
        pending: dict[str, datetime] = {}
        for start in range(0, len(keys), 900):  # stay under SQLite's parameter limit
            pending.update(
                conn.execute(
                    select(sends.c.dedup_key, sends.c.created_at).where(
                        sends.c.dedup_key.in_(keys[start : start + 900]),
                        sends.c.status == "pending",
                    )
                ).all()
            )
    return pending


def _finish(store: Store, outcomes: list[dict[str, Any]]) -> None:
    if not outcomes:
        return
    with store.transaction() as conn:
        conn.execute(
            update(sends)
            .where(sends.c.dedup_key == bindparam("key"), sends.c.channel == bindparam("ch"))
            .values(
                status=bindparam("st"),
                provider_id=bindparam("pid"),
                error=bindparam("err"),
                updated_at=bindparam("at"),
            ),
            outcomes,
        )
        release_held_receipts(conn, [o["pid"] for o in outcomes if o["pid"]], outcomes[0]["at"])


async def send_chunk(
    store: Store,
    channels: Mapping[str, Channel],
    warning_id: int,
    from_id: int,
    to_id: int,
    now: datetime,
    clock: Any = None,
) -> ChunkResult:
    """Send one chunk. `clock` (a time.perf_counter-like callable) records the first
    send, for the benchmark."""
    result = ChunkResult()
    with store.read() as conn:
        warning = conn.execute(
            select(citizen_warnings).where(citizen_warnings.c.id == warning_id)
        ).first()
        if warning is None or warning.status not in ("sent",):
            return result
        recipients = _recipients(conn, warning, from_id, to_id)
    allowed = [c for c in warning.channels if c in channels]
    plan: dict[str, tuple[Any, str, str]] = {}
    rows = []
    for sub in recipients:
        route = _route(sub, allowed)
        if route is None:
            result.skipped += 1
            continue
        channel, address = route
        key = f"w{warning_id}:s{sub.id}"
        text = warning.text_en if sub.language == "en" else warning.text_zh
        plan[key] = (sub, channel, address)
        rows.append(
            {
                "dedup_key": key,
                "channel": channel,
                "recipient": address,
                "body": text,
                "status": "pending",
                "created_at": now,
                "updated_at": now,
                "warning_id": warning_id,
                "subscriber_id": sub.id,
            }
        )
    pending = _ledger(store, rows)
    result.skipped += len(rows) - len(pending)
    # Rows an earlier attempt wrote: the provider may have taken these already.
    earlier = {key: as_utc(at) for key, at in pending.items() if as_utc(at) < now}
    texts = {r["dedup_key"]: r["body"] for r in rows}
    card = card_of(warning)  # for channels that show a warning's fields (WeChat)
    outcomes: list[dict[str, Any]] = []
    failover: list[tuple[Any, str]] = []
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(key: str) -> None:
        sub, channel, address = plan[key]
        async with gate:
            if clock is not None and result.first_send_at is None:
                result.first_send_at = clock()
            message = Message(key, address, texts[key], card)
            provider, provider_id = channels[channel], None
            if key in earlier and isinstance(provider, Reconciling):
                provider_id = await taken_before(provider, message, earlier[key])
            try:
                provider_id = provider_id or await provider.send(message)
            except RetryableError as exc:
                result.retry += 1  # stays pending; the chunk is redelivered later
                result.errors.append(str(exc))
                return
            except PermanentError as exc:
                result.failed += 1
                outcomes.append(
                    {
                        "key": key,
                        "ch": channel,
                        "st": "failed",
                        "pid": None,
                        "err": str(exc)[:500],
                        "at": now,
                    }
                )
                failover.append((sub, channel))
                return
        result.sent += 1
        outcomes.append(
            {"key": key, "ch": channel, "st": "sent", "pid": provider_id, "err": None, "at": now}
        )

    await asyncio.gather(*(one(key) for key in sorted(pending)))
    _finish(store, outcomes)
    # A permanent failure on one channel: try the subscriber's other channel, once.
    retry_rows = []
    for sub, failed_channel in failover:
        route = _route(sub, allowed, exclude=failed_channel)
        if route is not None:
            key = f"w{warning_id}:s{sub.id}"
            retry_rows.append(
                {
                    "dedup_key": key,
                    "channel": route[0],
                    "recipient": route[1],
                    "body": texts[key],
                    "status": "pending",
                    "created_at": now,
                    "updated_at": now,
                    "warning_id": warning_id,
                    "subscriber_id": sub.id,
                }
            )
            plan[key] = (sub, route[0], route[1])
    if retry_rows:
        outcomes.clear()
        again = _ledger(store, retry_rows)
        await asyncio.gather(*(one(key) for key in sorted(again)))
        result.failed_over = len(again)
        _finish(store, outcomes)
    return result

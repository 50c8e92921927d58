"""A person's message history: every message sent, or tried, to one phone number (crew,
staff or citizen), read from the send ledger, newest first, a bounded page at a time.

The ledger holds every outgoing message (crew and staff notifications, citizen receipts,
warning sends on every channel, SMS replies), one row per message and channel, so a
message tried on SMS and then on WeChat shows twice. A subscriber's WeChat messages are
addressed to their openid; they are found through the subscriber with that number."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, or_, select

from pingan.privacy import redact_links
from pingan.store import as_utc
from pingan.store.schema import sends, subscribers

PAGE_DEFAULT = 50
PAGE_MAX = 200

# Dedup keys, as the senders write them, to the kind of message (the notification
# event types of streams/handlers.py, and the warning fan-out's key).
_KINDS = (
    (re.compile(r"assignment:\d+:reminder"), "crew.reminder"),
    (re.compile(r"assignment:\d+"), "crew.assignment"),
    (re.compile(r"digest:.+"), "staff.digest"),
    (re.compile(r"report:\d+:citizen\.received"), "citizen.received"),
    (re.compile(r"report:\d+:citizen\.resolved"), "citizen.resolved"),
    (re.compile(r"w\d+:s\d+"), "citizen.warning"),
    (re.compile(r"reply:.+"), "sms.reply"),
)


def kind_of(dedup_key: str) -> str:
    """What a ledger row was for, from its dedup key ('other' for a key no sender
    writes today)."""
    for pattern, kind in _KINDS:
        if pattern.fullmatch(dedup_key):
            return kind
    return "other"


@dataclass(frozen=True)
class HistoryPage:
    messages: list[dict[str, Any]]
    next_before: int | None  # pass as `before` for the next (older) page; None: no more


def message_view(row: Any) -> dict[str, Any]:
    """One ledger row as a dispatcher reads it. A crew link in the text is a credential
    for that crew: the history says a link was sent, not which."""
    return {
        "id": row.id,
        "at": as_utc(row.created_at).isoformat(),  # type: ignore[union-attr]
        "updated_at": as_utc(row.updated_at).isoformat(),  # type: ignore[union-attr]
        "kind": kind_of(row.dedup_key),
        "channel": row.channel,
        "to": row.recipient,
        "status": row.status,
        "provider_id": row.provider_id,
        "error": row.error,
        "text": redact_links(row.body),
        "warning_id": row.warning_id,
    }


def message_history(
    conn: Connection, phone: str, limit: int = PAGE_DEFAULT, before: int | None = None
) -> HistoryPage:
    """Messages to `phone` (E.164) or to the subscriber with that number, newest first
    (by ledger id), at most `limit`, older than the row `before` when given."""
    limit = max(1, min(limit, PAGE_MAX))
    subscriber = select(subscribers.c.id).where(subscribers.c.phone == phone)
    query = select(sends).where(
        or_(sends.c.recipient == phone, sends.c.subscriber_id.in_(subscriber))
    )
    if before is not None:
        query = query.where(sends.c.id < before)
    rows = conn.execute(query.order_by(sends.c.id.desc()).limit(limit + 1)).all()
    shown = rows[:limit]
    more = len(rows) > limit
    return HistoryPage([message_view(r) for r in shown], shown[-1].id if more else None)

"""The send ledger wrapped around any channel: one row per (dedup key, channel), so a
redelivered event or a restart never sends the same message twice. The notification
pipeline (alerts/pipeline.py) writes and reads it; this module holds its statuses and
what moves them after the send (receipts).

The window a ledger alone cannot close: the provider accepted the message and we
crashed before writing 'sent', or its answer never came (a timeout). Such a row is
still 'pending' with `attempt_started_at` set; before it is sent again, a channel that
can look its messages up (Twilio: `Reconciling`) is asked, and a message it already
took is recorded instead of sent again; while it cannot say, the row waits. The local
outbox channel is idempotent by key.

After 'sent', the provider's delivery receipts move a row along one line of progress
(`after_receipt`): never backwards, and a row in a terminal status is never sent again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, select, text, update

from pingan.store import insert_or_ignore
from pingan.store.schema import held_receipts, sends

log = logging.getLogger("pingan.alerts.ledger")

# ---- statuses ------------------------------------------------------------------------
# A row is 'pending' until a provider takes the message ('sent') or refuses it for good
# ('failed'); then Twilio's delivery receipts move it. Twilio's Message status values are
# the `message_enum_status` of its OpenAPI description (../shared/corpus/twilio), described
# at https://www.twilio.com/docs/messaging/api/message-resource#message-status-values; the
# order a status callback reports them in is drawn at
# https://www.twilio.com/docs/messaging/guides/outbound-message-status-in-status-callbacks
# (accepted/scheduled -> queued -> sending -> sent -> delivered -> read, or failed /
# undelivered / canceled). Receipts can arrive out of order (a late 'sent' after
# 'delivered'), so each status has a place on one line and a receipt only moves a row
# forward. The same place for two statuses means neither replaces the other.
PROGRESS: dict[str, int] = {
    "pending": 0,  # ours: no provider has taken it yet
    "accepted": 1,  # a Messaging Service took it
    "scheduled": 1,
    "queued": 2,
    "sending": 3,
    "receiving": 3,  # inbound-only statuses, ranked beside their outbound twins
    "sent": 4,  # ours too: the provider took it
    "failed": 5,  # ours too: the provider refused it for good
    "undelivered": 5,
    "canceled": 5,
    "partially_delivered": 6,
    "delivered": 7,
    "received": 7,
    "read": 8,
}
RECEIPT_STATUSES = frozenset(PROGRESS) - {"pending"}
# Terminal, and did not reach the phone: a row here is never sent again (a later receipt
# may still say it arrived after all). Every status from 'sent' on is never sent again.
NOT_REACHED = frozenset(s for s, place in PROGRESS.items() if place == PROGRESS["failed"])
# The phone has it (all or part); with 'sent', it may have: a correction goes to these.
REACHED = ("partially_delivered", "delivered", "received", "read")
MAY_HAVE_REACHED = ("sent", *REACHED)


def after_receipt(current: str, reported: str) -> str:
    """The row's status once a receipt reporting `reported` arrives: the later of the
    two on the line of progress (an unknown current status is treated as 'pending')."""
    if PROGRESS[reported] > PROGRESS.get(current, 0):
        return reported
    return current


def statuses_before(reported: str) -> list[str]:
    """Every status a receipt reporting `reported` moves a row out of."""
    return sorted(s for s in PROGRESS if s != reported and after_receipt(s, reported) == reported)


@dataclass(frozen=True)
class SendOutcome:
    status: str  # sent, already_sent, failed, retry
    provider_id: str | None = None
    error: str | None = None


def record_sent(
    conn: Connection, key: str, channel: str, recipient: str, body: str, now: datetime
) -> None:
    """A message a provider sent for us without a call of ours (Twilio's TwiML reply to
    an inbound SMS): in the ledger as sent, so the person's history shows it."""
    conn.execute(
        sends.insert().values(
            dedup_key=key,
            channel=channel,
            recipient=recipient,
            body=body,
            status="sent",
            created_at=now,
            updated_at=now,
        )
    )


def apply_receipt(
    conn: Connection, provider_id: str, reported: str, error: str | None, now: datetime
) -> int:
    """A delivery receipt moves the provider's message forward (never back): one
    conditional UPDATE, so two receipts racing each other cannot undo one another. A
    receipt for an id the ledger does not hold yet (a warning chunk writes its ids when
    the chunk is done) is held until it does (`release_held_receipts`). Returns the rows
    moved (0: already as far, not yet known, or not a message of ours)."""
    _take_turns(conn, [provider_id])
    moved = int(
        conn.execute(
            update(sends)
            .where(
                sends.c.provider_id == provider_id, sends.c.status.in_(statuses_before(reported))
            )
            .values(status=reported, error=error, updated_at=now)
        ).rowcount
        or 0
    )
    if moved or conn.execute(select(sends.c.id).where(sends.c.provider_id == provider_id)).first():
        return moved
    held = {"provider_id": provider_id, "status": reported, "error": error, "received_at": now}
    conn.execute(insert_or_ignore(conn, held_receipts, "provider_id").values(**held))
    conn.execute(
        update(held_receipts)
        .where(
            held_receipts.c.provider_id == provider_id,
            held_receipts.c.status.in_(statuses_before(reported)),
        )
        .values(status=reported, error=error, received_at=now)
    )
    return 0


def release_held_receipts(conn: Connection, provider_ids: Sequence[str], now: datetime) -> int:
    """Apply, and forget, the receipts that came before these ids were written (call it
    after writing them, in the same transaction)."""
    moved = 0
    for start in range(0, len(provider_ids), 900):  # stay under SQLite's parameter limit
        batch = list(provider_ids[start : start + 900])
        _take_turns(conn, batch)
        held = conn.execute(
            select(held_receipts).where(held_receipts.c.provider_id.in_(batch))
        ).all()
        for receipt in held:
            moved += apply_receipt(conn, receipt.provider_id, receipt.status, receipt.error, now)
        if held:
            conn.execute(
                delete(held_receipts).where(
                    held_receipts.c.provider_id.in_([r.provider_id for r in held])
                )
            )
    return moved


def _take_turns(conn: Connection, provider_ids: Sequence[str]) -> None:
    """A receipt holding itself for an id not yet written, and the sender writing that
    id and looking for held receipts, must not both run at once: under PostgreSQL's
    read committed, each missed the other's uncommitted row and the receipt stayed held
    for good. A transaction-scoped advisory lock per provider id makes them take turns
    (SQLite's writers already do)."""
    if conn.dialect.name != "postgresql" or not provider_ids:
        return
    conn.execute(
        text(
            "SELECT pg_advisory_xact_lock(hashtext('pingan:receipt:' || id)) "
            "FROM (SELECT unnest(CAST(:ids AS text[])) AS id ORDER BY 1) AS ids"
        ),
        {"ids": sorted(set(provider_ids))},
    )

"""The send ledger wrapped around any channel: one row per (dedup key, channel), so a
redelivered event or a restart never sends the same message twice.

The window a ledger alone cannot close: the provider accepted the message and we
crashed before writing 'sent'. On redelivery the row is still 'pending'. A channel
that can look its messages up (Twilio: `Reconciling`) is asked first, and a message it
already took is recorded instead of sent again; the local outbox channel is
idempotent by key. Provider channels write 'sent' right after the call.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update

from alerts.channels.base import (
    Channel,
    Message,
    PermanentError,
    Reconciling,
    RetryableError,
    SendError,
)
from pingan.privacy import mask_phone
from pingan.store import Store, as_utc
from pingan.store.schema import sends

log = logging.getLogger("pingan.alerts.ledger")


@dataclass(frozen=True)
class SendOutcome:
    status: str  # sent, already_sent, failed, retry
    provider_id: str | None = None
    error: str | None = None


async def send_once(store: Store, channel: Channel, message: Message, now: datetime) -> SendOutcome:
    key = message.idempotency_key
    with store.transaction() as conn:
        row = conn.execute(
            select(sends.c.status, sends.c.provider_id, sends.c.created_at).where(
                sends.c.dedup_key == key, sends.c.channel == channel.name
            )
        ).first()
        if row and row.status == "sent":
            return SendOutcome("already_sent", row.provider_id)
        if row is None:
            conn.execute(
                sends.insert(),
                dict(
                    dedup_key=key,
                    channel=channel.name,
                    recipient=message.recipient,
                    body=message.body,
                    status="pending",
                    created_at=now,
                    updated_at=now,
                ),
            )
    if row is not None and row.status == "pending" and isinstance(channel, Reconciling):
        found = await taken_before(channel, message, as_utc(row.created_at))
        if found:
            _finish(store, key, channel.name, "sent", found, None, now)
            return SendOutcome("already_sent", found)
    try:
        provider_id = await channel.send(message)
    except RetryableError as exc:
        log.warning("send retry key=%s to=%s error=%s", key, mask_phone(message.recipient), exc)
        return SendOutcome("retry", error=str(exc))
    except PermanentError as exc:
        _finish(store, key, channel.name, "failed", None, str(exc), now)
        log.error("send failed key=%s to=%s error=%s", key, mask_phone(message.recipient), exc)
        return SendOutcome("failed", error=str(exc))
    _finish(store, key, channel.name, "sent", provider_id, None, now)
    return SendOutcome("sent", provider_id)


async def taken_before(channel: Reconciling, message: Message, since: datetime) -> str | None:
    """The provider's id if an earlier attempt reached it. If the provider cannot say,
    send again: a duplicate costs less than a crew never told."""
    try:
        found = await channel.find_sent(message, since)
    except SendError as exc:
        log.warning(
            "send not reconciled key=%s to=%s (sending again): %s",
            message.idempotency_key,
            mask_phone(message.recipient),
            exc,
        )
        return None
    if found:
        log.info(
            "send reconciled key=%s to=%s provider_id=%s (taken before a crash)",
            message.idempotency_key,
            mask_phone(message.recipient),
            found,
        )
    return found


def _finish(
    store: Store,
    key: str,
    channel: str,
    status: str,
    provider_id: str | None,
    error: str | None,
    now: datetime,
) -> None:
    with store.transaction() as conn:
        conn.execute(
            update(sends)
            .where(sends.c.dedup_key == key, sends.c.channel == channel)
            .values(status=status, provider_id=provider_id, error=error, updated_at=now)
        )

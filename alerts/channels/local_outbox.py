"""The embedded default channel: messages land in a table and a log line, where a
newcomer (and a test) can read what a phone would have received."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from alerts.channels.base import Message
from pingan.clock import utcnow
from pingan.privacy import mask_phone, mask_phones_in_text
from pingan.store import Store
from pingan.store.schema import local_messages

log = logging.getLogger("pingan.alerts.local_outbox")


class LocalOutboxChannel:
    name = "local"

    def __init__(self, store: Store) -> None:
        self.store = store

    async def send(self, message: Message) -> str:
        at = utcnow()
        try:
            with self.store.transaction() as conn:
                result = conn.execute(
                    local_messages.insert(),
                    dict(
                        idempotency_key=message.idempotency_key,
                        recipient=message.recipient,
                        body=message.body,
                        created_at=at,
                    ),
                )
                message_id = result.inserted_primary_key[0]
        except IntegrityError:
            # Sent before (a redelivery after a crash): the mailbox keeps one copy.
            with self.store.read() as conn:
                message_id = conn.execute(
                    select(local_messages.c.id).where(
                        local_messages.c.idempotency_key == message.idempotency_key
                    )
                ).scalar_one()
            return f"local-{message_id}"
        log.info(
            "message to=%s chars=%d body=%r",
            mask_phone(message.recipient),
            len(message.body),
            mask_phones_in_text(message.body),
        )
        return f"local-{message_id}"

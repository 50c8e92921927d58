"""What the calls agent does with one `crew.call` event (pingan/dispatch/timers.py
emits it when an escalation step finds a crew leader silent): phone the leader once,
through the send ledger (dedup key `call:assignment:<id>`), so a redelivered event or a
restart never rings twice. A leader who answered meanwhile is not called."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from alerts.channels.base import Channel, Message
from alerts.pipeline import send_once
from alerts.render import crew_call_text
from alerts.voice import answer_url, call_key
from pingan.privacy import mask_phone
from pingan.store import SYSTEM, Store, claim_event, record_audit
from pingan.vocabulary import AssignmentState
from streams.handlers import _field, assignment_to_tell, crew_task

log = logging.getLogger("pingan.streams.calls")


class RetryLater(Exception):
    """The call's provider is failing: leave the event unclaimed, so it is delivered
    again (the ledger's pending row makes that pass call once)."""


CONSUMER = "calls"


def call_message(conn: Any, assignment_id: int, public_url: str) -> tuple[Message, str]:
    """The call for an assignment, and the assignment's state now."""
    row = assignment_to_tell(conn, assignment_id)
    text = crew_call_text(crew_task(conn, row, None))
    message = Message(
        call_key(assignment_id),
        row.phone,
        text,
        answer_url=answer_url(public_url, assignment_id),
    )
    return message, row.state


async def handle_call(
    store: Store, channel: Channel | None, event: dict[str, Any], now: datetime, public_url: str
) -> None:
    event_id = _field(event, "event_id")
    assignment_id = int(_field(event, "assignment_id"))
    with store.read() as conn:
        message, state = call_message(conn, assignment_id, public_url)
    outcome = None
    if channel is None:
        log.warning("no voice channel: crew of assignment %s not called", assignment_id)
    elif state != AssignmentState.ASSIGNED:
        log.info("assignment %s is %s: no call", assignment_id, state)
    else:
        outcome = await send_once(store, channel, message, now)
        if outcome.status == "retry":  # left unclaimed: delivered again, sent once
            raise RetryLater(f"call {assignment_id}: provider failing ({outcome.error})")
        log.info(
            "crew call assignment=%s to=%s status=%s",
            assignment_id,
            mask_phone(message.recipient),
            outcome.status,
        )
    with store.transaction() as conn:
        if claim_event(conn, CONSUMER, event_id, now):
            record_audit(
                conn,
                now,
                SYSTEM,
                f"crew.call.{outcome.status if outcome else 'skipped'}",
                "assignment",
                assignment_id,
                {
                    "channel": channel.name if channel else None,
                    "provider_id": outcome.provider_id if outcome else None,
                    "error": outcome.error if outcome else None,
                    "state": state,
                },
            )

"""What every channel is: send one message, return the provider's id, or raise an
error that says whether trying again can help."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class Message:
    idempotency_key: str
    recipient: str  # E.164 phone number, openid, or robot id, as the channel expects
    body: str


class SendError(Exception):
    pass


class RetryableError(SendError):
    """Rate limited, timed out, provider down: the same message may succeed later."""


class PermanentError(SendError):
    """Invalid number, opted out, rejected content: do not try again on this channel."""


class Channel(Protocol):
    name: str

    async def send(self, message: Message) -> str: ...


@runtime_checkable
class Reconciling(Protocol):
    """A provider channel that can tell whether it already took a message: used before
    sending again a ledger row left 'pending' (accepted by the provider, then a crash
    before we wrote 'sent')."""

    async def find_sent(self, message: Message, since: datetime) -> str | None: ...

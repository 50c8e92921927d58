"""What every channel is: send one message, return the provider's id, or raise an
error that says whether trying again can help."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


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

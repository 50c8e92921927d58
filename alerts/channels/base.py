"""What every channel is: send one message, return the provider's id, or raise an
error that says whether trying again can help."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class WarningCard:
    """A citizen warning as the short fields a card shows (a WeChat Official Account
    template's keywords, each at most 20 characters; alerts/render.py makes them), and
    the warning whose public page holds the full text."""

    warning_id: int
    event: str
    level: str
    area: str
    time: str
    advice: str

    def fields(self) -> dict[str, str]:
        return {
            "event": self.event,
            "level": self.level,
            "area": self.area,
            "time": self.time,
            "advice": self.advice,
        }


@dataclass(frozen=True)
class Message:
    idempotency_key: str
    recipient: str  # E.164 phone number, openid, or robot id, as the channel expects
    body: str
    card: WarningCard | None = None  # a citizen warning's fields, for channels showing them
    answer_url: str | None = None  # a call's: where the key the person presses is posted


class SendError(Exception):
    pass


class RetryableError(SendError):
    """Rate limited, timed out, provider down: the same message may succeed later, not
    before `retry_after_s` when the provider said so (an HTTP Retry-After). `unsure`:
    the request went out and no answer came, so the provider may have taken it (ask it
    before sending again)."""

    def __init__(
        self, message: str, retry_after_s: float | None = None, unsure: bool = False
    ) -> None:
        super().__init__(message)
        self.retry_after_s, self.unsure = retry_after_s, unsure


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

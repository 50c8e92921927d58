"""Outgoing pace per sender: messages per second and a burst, with aiolimiter's leaky
bucket (a bucket of `burst` that drains at `rate_per_s`).

A sender is what the provider counts against: one Twilio long code or Messaging
Service (one channel instance), one WeCom robot key, one Official Account. The
defaults are what each kind of sender takes without the provider answering 429:

| sender | default | why |
|---|---|---|
| Twilio long code (`twilio_from`) | 1/s, burst 1 | a long code sends about one segment a second |
| Twilio Messaging Service | 10/s, burst 10 | a pool of senders; raise it for a short code (100/s) |
| Twilio voice (calls) | 1/s, burst 1 | an account's default calls per second |
| WeCom group robot | 20/min, burst 1 | the robot refuses more than 20 a minute (45009) |
| WeChat Official Account | 20/s, burst 20 | template messages: stay well inside the API's limits |

Settings override the SMS and Official Account paces (`sms_rate_per_s`, `sms_burst`,
`wechat_rate_per_s`, `wechat_burst`); the robot's is the robot's own limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from aiolimiter import AsyncLimiter

from alerts.channels.base import Channel, Message, Reconciling


@dataclass(frozen=True)
class Pace:
    rate_per_s: float
    burst: int = 1

    def __post_init__(self) -> None:
        if self.rate_per_s <= 0 or self.burst < 1:
            raise ValueError(f"a pace needs a rate above 0 and a burst of 1 or more: {self}")


TWILIO_LONG_CODE = Pace(1.0, 1)
TWILIO_MESSAGING_SERVICE = Pace(10.0, 10)
TWILIO_VOICE = Pace(1.0, 1)
WECOM_ROBOT = Pace(20 / 60, 1)
WECHAT_OFFICIAL_ACCOUNT = Pace(20.0, 20)


def pace_of(default: Pace, rate_per_s: float = 0.0, burst: int = 0) -> Pace:
    """A configured pace, where 0 keeps the sender kind's default (the burst follows a
    configured rate: a rate of 100/s with no burst set takes bursts of up to 100)."""
    if rate_per_s <= 0:
        return Pace(default.rate_per_s, burst or default.burst)
    return Pace(rate_per_s, burst or max(1, int(rate_per_s)))


def limiter(pace: Pace) -> AsyncLimiter:
    """`burst` messages per `burst / rate` seconds: a burst at once, then the rate."""
    return AsyncLimiter(pace.burst, pace.burst / pace.rate_per_s)


class PacedChannel:
    """Any channel, one sender, at a pace: each send waits its turn, then sends."""

    def __init__(self, channel: Channel, pace: Pace) -> None:
        self.channel, self.pace = channel, pace
        self.name = channel.name
        self._limiter = limiter(pace)

    async def send(self, message: Message) -> str:
        async with self._limiter:
            return await self.channel.send(message)


class PacedReconcilingChannel(PacedChannel):
    """A paced channel that can still look up what the provider already took (the
    look-up is not a message and is not paced)."""

    async def find_sent(self, message: Message, since: datetime) -> str | None:
        assert isinstance(self.channel, Reconciling)
        return await self.channel.find_sent(message, since)


def paced(channel: Channel, pace: Pace | None) -> Channel:
    """The channel at `pace` (None: as fast as it goes, e.g. the local outbox)."""
    if pace is None:
        return channel
    if isinstance(channel, Reconciling):
        return PacedReconcilingChannel(channel, pace)
    return PacedChannel(channel, pace)

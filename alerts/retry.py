"""What to do after a send failed, as pure functions of (attempt, error, now).

The notification pipeline (alerts/pipeline.py) asks these and carries out the answer;
nothing here sleeps, reads a clock or touches the ledger, so every rule is tested as a
table (tests/unit/test_retry.py).

- A retryable error (provider down, timed out, rate limited) is tried again on the
  same channel after an exponential backoff, never sooner than the provider's
  Retry-After. It is never given up on by itself: only an answer from the provider, a
  permanent refusal or a dispatcher ends a message.
- Past `escalate_after` since the first attempt, the message is also handed to the next
  channel of its kind's chain (a crew's SMS: the voice call, then the unit supervisor),
  while the first channel keeps trying.
- A permanent error (invalid number, opted out) ends the message on that channel and
  hands it to the next channel at once.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

from alerts.channels.base import PermanentError, SendError

# Which channels a kind of message tries, in order. A channel not configured here is
# skipped ("voice" until calls are built). "supervisor" is not a provider: the crew's
# unit supervisor is told, in their staff digest, that the crew could not be reached.
CHAINS: dict[str, tuple[str, ...]] = {
    "crew": ("sms", "voice", "supervisor"),
    "staff": ("sms",),
    "citizen": ("sms",),
    "warning": ("sms", "wechat"),  # narrowed to the subscriber's own channels
}


def message_kind(dedup_key: str) -> str:
    """The kind of a ledger row, from the dedup key its renderer gave it."""
    if dedup_key.startswith("assignment:"):
        return "crew"
    if dedup_key.startswith("digest:"):
        return "staff"
    if dedup_key.startswith("report:"):
        return "citizen"
    if dedup_key.startswith("w") and ":s" in dedup_key:
        return "warning"
    return "other"


def next_channel(
    kind: str, current: str, available: Collection[str], allowed: Sequence[str] | None = None
) -> str | None:
    """The channel after `current` in the kind's chain that is configured (and, for a
    warning, one the subscriber chose: `allowed`), or None at the end of the chain."""
    chain = [c for c in CHAINS.get(kind, (current,)) if allowed is None or c in allowed]
    if current not in chain:
        return None
    for channel in chain[chain.index(current) + 1 :]:
        if channel in available:
            return channel
    return None


@dataclass(frozen=True)
class RetryPolicy:
    base_s: float = 2.0  # first wait
    factor: float = 2.0
    cap_s: float = 300.0  # longest wait between two attempts (Retry-After may exceed it)
    escalate_after_s: float | None = None  # None: this kind never escalates on retries


POLICIES: dict[str, RetryPolicy] = {
    # A crew should hear within minutes; past two of failing SMS, call and tell the
    # supervisor while the SMS keeps trying.
    "crew": RetryPolicy(base_s=2.0, cap_s=60.0, escalate_after_s=120.0),
    "staff": RetryPolicy(base_s=2.0, cap_s=60.0),
    "citizen": RetryPolicy(base_s=5.0, cap_s=300.0),
    "warning": RetryPolicy(base_s=5.0, cap_s=300.0),
}
DEFAULT_POLICY = RetryPolicy()


@dataclass(frozen=True)
class Retry:
    at: datetime  # try this channel again then
    escalate: bool  # and hand the message to the next channel now (once)


@dataclass(frozen=True)
class GiveUpChannel:
    """This channel will never take the message: it is 'failed' here, and goes to the
    next channel of the chain, if any."""

    reason: str


Step = Retry | GiveUpChannel


def backoff_s(attempt: int, policy: RetryPolicy) -> float:
    """Wait after the `attempt`-th failed attempt (1-based): base, base·factor, … capped."""
    return min(policy.cap_s, policy.base_s * policy.factor ** max(attempt - 1, 0))


def retry_after_s(value: str | None, now: datetime) -> float | None:
    """An HTTP Retry-After header (RFC 9110 §10.2.3: seconds, or an HTTP date) as
    seconds from `now`; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max((when - now).total_seconds(), 0.0)


def next_step(
    attempt: int,
    error: SendError,
    now: datetime,
    first_attempt_at: datetime,
    policy: RetryPolicy,
) -> Step:
    """After the `attempt`-th attempt (1-based) failed with `error` at `now`."""
    if isinstance(error, PermanentError):
        return GiveUpChannel(str(error))
    wait = backoff_s(attempt, policy)
    asked = getattr(error, "retry_after_s", None)
    if asked is not None:
        wait = max(wait, asked)
    escalate = (
        policy.escalate_after_s is not None
        and (now - first_attempt_at).total_seconds() >= policy.escalate_after_s
    )
    return Retry(now + timedelta(seconds=wait), escalate)

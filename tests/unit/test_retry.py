"""The pipeline's decisions as tables: (attempt, error, now) in, what next out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from alerts.channels.base import PermanentError, RetryableError
from alerts.pacing import TWILIO_LONG_CODE, TWILIO_MESSAGING_SERVICE, Pace, limiter, pace_of
from alerts.retry import (
    POLICIES,
    GiveUpChannel,
    Retry,
    RetryPolicy,
    message_kind,
    next_channel,
    next_step,
    retry_after_s,
)

T0 = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
CREW = POLICIES["crew"]


def s(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("attempt", "error", "now", "expected"),
    [
        # exponential backoff from 2 s, doubling
        (1, RetryableError("500"), s(0), Retry(s(2), escalate=False)),
        (2, RetryableError("500"), s(2), Retry(s(6), escalate=False)),
        (3, RetryableError("500"), s(6), Retry(s(14), escalate=False)),
        # capped at a minute for a crew
        (9, RetryableError("500"), s(100), Retry(s(160), escalate=False)),
        # Retry-After longer than the backoff wins; shorter does not shorten it
        (1, RetryableError("429", retry_after_s=30), s(0), Retry(s(30), escalate=False)),
        (4, RetryableError("429", retry_after_s=1), s(0), Retry(s(16), escalate=False)),
        # Retry-After beyond the cap is still honoured
        (9, RetryableError("429", retry_after_s=600), s(0), Retry(s(600), escalate=False)),
        # past two minutes of failures a crew's message also goes to the next channel
        (7, RetryableError("timeout"), s(120), Retry(s(180), escalate=True)),
        # invalid number / opted out: this channel is done, on to the next
        (1, PermanentError("code 21211"), s(0), GiveUpChannel("code 21211")),
        (5, PermanentError("code 21610"), s(300), GiveUpChannel("code 21610")),
    ],
)
def test_next_step_for_a_crew_message(attempt, error, now, expected) -> None:  # type: ignore[no-untyped-def]
    assert next_step(attempt, error, now, T0, CREW) == expected


def test_a_warning_never_escalates_and_backs_off_to_five_minutes() -> None:
    policy = POLICIES["warning"]
    assert next_step(1, RetryableError("x"), s(3600), T0, policy) == Retry(s(3605), False)
    assert next_step(20, RetryableError("x"), s(3600), T0, policy) == Retry(s(3900), False)
    assert next_step(1, RetryableError("x"), s(0), T0, RetryPolicy(base_s=1.0)).at == s(1)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("7", 7.0),
        (" 120 ", 120.0),
        ("Fri, 27 Nov 2026 08:00:30 GMT", 30.0),
        ("Fri, 27 Nov 2026 07:59:00 GMT", 0.0),  # already past
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_header(header: str | None, expected: float | None) -> None:
    assert retry_after_s(header, T0) == expected


@pytest.mark.parametrize(
    ("kind", "current", "available", "allowed", "expected"),
    [
        ("crew", "sms", {"sms", "supervisor"}, None, "supervisor"),  # no voice yet
        ("crew", "sms", {"sms", "voice", "supervisor"}, None, "voice"),
        ("crew", "voice", {"sms", "voice", "supervisor"}, None, "supervisor"),
        ("crew", "supervisor", {"sms", "voice", "supervisor"}, None, None),
        ("citizen", "sms", {"sms", "supervisor"}, None, None),
        ("staff", "sms", {"sms"}, None, None),
        ("warning", "sms", {"sms", "wechat"}, ["sms", "wechat"], "wechat"),
        ("warning", "sms", {"sms", "wechat"}, ["sms"], None),  # the subscriber chose SMS only
        ("crew", "local", {"local"}, None, None),  # a channel outside the chain
    ],
)
def test_next_channel(kind, current, available, allowed, expected) -> None:  # type: ignore[no-untyped-def]
    assert next_channel(kind, current, available, allowed) == expected


@pytest.mark.parametrize(
    ("key", "kind"),
    [
        ("assignment:12", "crew"),
        ("assignment:12:reminder", "crew"),
        ("digest:+8613800000000:1.0", "staff"),
        ("report:7:citizen.received", "citizen"),
        ("w3:s41", "warning"),
        ("crew:1", "other"),
    ],
)
def test_message_kind(key: str, kind: str) -> None:
    assert message_kind(key) == kind


def test_paces_per_sender_kind() -> None:
    assert pace_of(TWILIO_LONG_CODE) == Pace(1.0, 1)
    assert pace_of(TWILIO_MESSAGING_SERVICE) == Pace(10.0, 10)
    assert pace_of(TWILIO_LONG_CODE, 100.0) == Pace(100.0, 100)
    assert pace_of(TWILIO_LONG_CODE, 100.0, 5) == Pace(100.0, 5)
    assert pace_of(TWILIO_LONG_CODE, 0, 3) == Pace(1.0, 3)
    bucket = limiter(Pace(100.0, 5))
    assert (bucket.max_rate, bucket.time_period) == (5, 0.05)
    with pytest.raises(ValueError, match="rate above 0"):
        Pace(0.0)

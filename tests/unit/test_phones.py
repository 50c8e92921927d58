"""E.164 at every entrance, and the budget for auditing anonymous failures."""

from __future__ import annotations

import pytest

from pingan.http.ratelimit import AuditBudget
from pingan.phones import PhoneInvalid, e164, e164_or_raw, mobile_e164


@pytest.mark.parametrize(
    "raw",
    [
        "13512345678",
        "8613512345678",
        "+8613512345678",
        "+86 135 1234 5678",
        "135-1234-5678",
        "0086 135 1234 5678",
        "135\u200b1234\u200b5678",
        "\ufeff13512345678",
        "１３５１２３４５６７８",
    ],
)
def test_every_spelling_of_a_number_is_one_e164(raw: str) -> None:
    assert e164(raw) == "+8613512345678"


@pytest.mark.parametrize("raw", ["", "call me", "+", "1", "x" * 100])
def test_what_is_not_a_number_is_refused_naming_the_field(raw: str) -> None:
    with pytest.raises(PhoneInvalid, match=r"^phone: "):
        e164(raw)


def test_provider_senders_that_are_not_numbers_pass_as_given() -> None:
    assert e164_or_raw("+8610000000101") == "+8610000000101"
    assert e164_or_raw("PINGAN") == "PINGAN"


def test_the_audit_budget_counts_what_it_does_not_write() -> None:
    now = [0.0]
    budget = AuditBudget(per_minute=3, clock=lambda: now[0])
    assert [budget.take("x") for _ in range(5)] == [0, 0, 0, None, None]
    assert budget.take("y") == 0  # per kind
    now[0] = 61.0
    assert budget.take("x") == 2  # the next row says two were not written
    assert budget.take("x") == 0


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("13812345678", "+8613812345678"),
        ("138 1234 5678", "+8613812345678"),
        ("+86 138-1234-5678", "+8613812345678"),
        ("008613812345678", "+8613812345678"),
        ("8613812345678", "+8613812345678"),
        ("+14155550100", "+14155550100"),
    ],
)
def test_a_subscribers_mobile_in_any_spelling(raw: str, expected: str) -> None:
    assert mobile_e164(raw) == expected


@pytest.mark.parametrize(
    "raw", ["12345", "23812345678", "+86123", "abc", "+8602112345678", "01012345678"]
)
def test_a_subscriber_needs_a_mobile(raw: str) -> None:
    with pytest.raises(PhoneInvalid, match=r"^phone: .* is not a mobile number"):
        mobile_e164(raw)

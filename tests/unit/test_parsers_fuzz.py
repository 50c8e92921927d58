"""Hypothesis on the parsers that read what strangers send: each returns its value or
raises its own documented error, whatever the input."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from pingan.http.crew import parse_crew_reply
from pingan.intake.reports import ReportInvalid, validate_report
from pingan.links import LinkInvalid, verify_link
from pingan.phones import PhoneInvalid, e164
from pingan.privacy import ID_MASK, PHONE_MASK, mask_personal

SEEDED = settings(max_examples=400, derandomize=True, deadline=None)
NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
FIELDS = ["service_code", "lat", "long", "address_string", "description", "phone", "email"]


@SEEDED
@given(st.text(max_size=200))
def test_crew_replies_parse_or_are_not_understood(body: str) -> None:
    parsed = parse_crew_reply(body)
    if parsed is not None:
        code, _action, rest = parsed
        assert code is None or 0 <= code < 10**12
        assert isinstance(rest, str)


@SEEDED
@given(st.text(max_size=300))
def test_any_link_text_is_refused_or_verified(token: str) -> None:
    with contextlib.suppress(LinkInvalid):  # anything else escaping fails the test
        verify_link("secret", token, NOW)


@SEEDED
@given(st.dictionaries(st.sampled_from(FIELDS), st.text(max_size=60), max_size=7))
def test_any_open311_fields_make_a_report_or_a_named_refusal(fields: dict[str, str]) -> None:
    try:
        validate_report(fields, ["fallen_tree", "manhole"])
    except ReportInvalid as exc:
        assert ":" in exc.description  # names what is wrong


@SEEDED
@given(st.text(max_size=40))
def test_phones_normalise_or_are_refused(raw: str) -> None:
    try:
        number = e164(raw)
    except PhoneInvalid as exc:
        assert str(exc).startswith("phone: ")
    else:
        assert number.startswith("+") and number[1:].isdigit()
        assert e164(number) == number  # E.164 is a fixed point


@SEEDED
@given(
    st.text(max_size=40),
    st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True),
    st.from_regex(r"[1-6][0-9]{16}[0-9X]", fullmatch=True),
    st.text(max_size=40),
)
def test_masked_text_keeps_no_phone_or_id_number(
    before: str, phone: str, id_number: str, after: str
) -> None:
    text = f"{before}电话{phone}，身份证{id_number}{after}"
    masked = mask_personal(text)
    assert phone not in masked and id_number not in masked
    assert PHONE_MASK in masked or ID_MASK in masked

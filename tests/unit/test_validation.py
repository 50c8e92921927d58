"""The edge checks every route shares (pingan/http/validation.py): properties over
generated input with hypothesis, plus the cases the attack found."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pingan.http.validation import (
    MAX_JSON_DEPTH,
    Invalid,
    clean_text,
    is_id,
    json_depth,
    parse_id,
    parse_json,
    parse_number,
    parse_position,
    parse_when,
)

SEED = settings(max_examples=300, derandomize=True, deadline=None)


@SEED
@given(st.text(max_size=30))
def test_an_id_is_either_refused_or_a_bounded_integer(raw: str) -> None:
    try:
        value = parse_id(raw, "id")
    except Invalid as exc:
        assert str(exc).startswith("id: ")
        return
    assert 0 <= value < 2**63 and raw.strip().isascii()


@SEED
@given(st.integers(min_value=0, max_value=10**18 - 1))
def test_every_18_digit_number_is_an_id(value: int) -> None:
    assert parse_id(str(value), "id") == value


@pytest.mark.parametrize("raw", ["¹", "٣", "１", "99999999999999999999", "-1", "1e3", " ", ""])
def test_what_isdigit_let_through_is_not_an_id(raw: str) -> None:
    assert not is_id(raw)
    with pytest.raises(Invalid, match=r"^id: "):
        parse_id(raw, "id")


@SEED
@given(st.text(max_size=40))
def test_a_time_is_refused_or_aware_and_in_range(raw: str) -> None:
    try:
        value = parse_when(raw, "to")
    except Invalid as exc:
        assert str(exc).startswith("to: ")
        return
    assert value.tzinfo is not None
    assert datetime(2000, 1, 1, tzinfo=UTC) <= value <= datetime(2100, 1, 1, tzinfo=UTC)


@SEED
@given(st.datetimes(timezones=st.just(UTC)))
def test_times_outside_2000_to_2100_are_refused(value: datetime) -> None:
    inside = datetime(2000, 1, 1, tzinfo=UTC) <= value <= datetime(2100, 1, 1, tzinfo=UTC)
    try:
        parse_when(value.isoformat(), "from")
    except Invalid:
        assert not inside
    else:
        assert inside


@SEED
@given(
    st.one_of(
        st.floats(allow_nan=True, allow_infinity=True),
        st.integers(),
        st.text(max_size=20),
        st.booleans(),
        st.none(),
        st.lists(st.integers(), max_size=2),
    )
)
def test_a_coordinate_is_refused_or_finite_and_on_the_earth(raw: object) -> None:
    try:
        value = parse_number(raw, "lat", -90, 90)
    except Invalid as exc:
        assert str(exc).startswith("lat: ")
        return
    assert math.isfinite(value) and -90 <= value <= 90


def test_positions_need_both_halves_and_the_world() -> None:
    assert parse_position(None, "") is None
    assert parse_position("33.5", 114) == (33.5, 114.0)
    for lat, lon, field in (
        (95, 500, "lat"),
        (33, 500, "long"),
        ("Infinity", 1, "lat"),
        (1, None, "lat/long"),
    ):
        with pytest.raises(Invalid, match=f"^{field}"):
            parse_position(lat, lon)


@SEED
@given(st.text())
def test_clean_text_leaves_nothing_xml_cannot_carry(text: str) -> None:
    from xml.etree.ElementTree import Element, fromstring, tostring

    cleaned = clean_text(text)
    element = Element("d")
    element.text = cleaned
    fromstring(tostring(element))  # well-formed
    assert all(c in "\t\n\r" or 0x20 <= ord(c) < 0x7F or ord(c) > 0x9F for c in cleaned)


@SEED
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=5),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
        ),
        max_leaves=20,
    )
)
def test_json_within_bounds_parses_as_json_does(value: object) -> None:
    raw = json.dumps(value).encode()
    if json_depth(value) <= MAX_JSON_DEPTH:
        assert parse_json(raw) == value


@pytest.mark.parametrize(
    "raw",
    [b"[" * 50_000, b'{"a":' * 40 + b"1" + b"}" * 40, b"NaN", b'{"lat": Infinity}', b"\xff"],
)
def test_json_that_is_too_deep_or_not_json_is_refused(raw: bytes) -> None:
    with pytest.raises(Invalid, match=r"^body: "):
        parse_json(raw)


def test_an_unknown_charset_names_the_header() -> None:
    with pytest.raises(Invalid, match=r"^Content-Type: unknown charset"):
        parse_json(b"{}", "no-such-charset")
    assert parse_json('{"a": "树"}'.encode("gb18030"), "gb18030") == {"a": "树"}


def test_deep_json_is_measured_without_recursion() -> None:
    deep: list[object] = []
    for _ in range(100_000):
        deep = [deep]
    assert json_depth(deep) == 100_001


@pytest.mark.parametrize(
    ("text", "public"),
    [
        (
            "我家在人民路12号院3号楼2单元501室，电话13812345678，身份证41110219800101123X",
            "我家在人民路[门牌已隐去]，电话[电话已隐去]，身份证[证件号已隐去]",
        ),
        ("+86 135 1234 5678 打这个", "[电话已隐去] 打这个"),
        ("8613512345678", "[电话已隐去]"),
        ("135\u200b1234\u200b5678", "[电话已隐去]"),
        ("座机0395-1234567", "座机[电话已隐去]"),
        ("老身份证410102800101123", "老身份证[证件号已隐去]"),
        ("解放路三号楼门口", "解放路[门牌已隐去]门口"),
        ("3-2-501门口积水", "[门牌已隐去]门口积水"),
        # what is not personal stays
        ("人民路口大树倒了", "人民路口大树倒了"),
        ("地铁3号线出口", "地铁3号线出口"),
        ("107国道积水50厘米", "107国道积水50厘米"),
        ("2026-12-01 下午3点", "2026-12-01 下午3点"),
        ("110报警了", "110报警了"),
    ],
)
def test_public_text_masks_phones_id_numbers_and_house_numbers(text: str, public: str) -> None:
    from pingan.privacy import mask_personal

    assert mask_personal(text) == public

"""The CAP writer and our CAP parser are one format both ways: any alert written reads
back to the same fields (times to the second and their offsets, coordinates to the
last bit), valid against the OASIS CAP 1.2 schema; times follow §3.3.2."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import xmlschema
from hypothesis import given, settings
from hypothesis import strategies as st

from pingan.intake.feeds.cap import (
    CATEGORIES,
    CERTAINTIES,
    MSG_TYPES,
    SCOPES,
    SEVERITIES,
    STATUSES,
    URGENCIES,
    CapAlert,
    CapArea,
    CapInfo,
    CapReference,
    cap_bytes,
    cap_time,
    parse_cap,
    write_cap,
)

XSD = xmlschema.XMLSchema(str(Path(__file__).parent.parent / "data" / "cap-schema" / "cap12.xsd"))
SEEDED = settings(max_examples=150, derandomize=True, deadline=None)


def exact(value: Any) -> Any:
    """Fields for comparison, a time as its text: 16:00+08:00 is not 08:00-00:00 here."""
    if dataclasses.is_dataclass(value):
        return tuple(exact(getattr(value, f.name)) for f in dataclasses.fields(value))
    if isinstance(value, tuple):
        return tuple(exact(v) for v in value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


@pytest.mark.parametrize(
    ("when", "text"),
    [
        (
            datetime(2026, 11, 27, 16, 0, 5, 999, tzinfo=timezone(timedelta(hours=8))),
            "2026-11-27T16:00:05+08:00",
        ),
        (datetime(2026, 11, 27, 8, 0, tzinfo=UTC), "2026-11-27T08:00:00-00:00"),
        (datetime(2026, 11, 27, 8, 0, tzinfo=timezone(timedelta(0))), "2026-11-27T08:00:00-00:00"),
        (
            datetime(2026, 1, 2, 3, 4, tzinfo=timezone(-timedelta(hours=5, minutes=30))),
            "2026-01-02T03:04:00-05:30",
        ),
    ],
)
def test_times_carry_their_offset_and_utc_is_minus_zero(when: datetime, text: str) -> None:
    assert cap_time(when) == text


def test_a_time_without_a_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        cap_time(datetime(2026, 11, 27, 8, 0))


# ---- any alert, both ways ---------------------------------------------------------

XML_CHARS = st.characters(codec="utf-8", exclude_categories=("Cs", "Cc"), exclude_characters="\r")
texts = st.text(XML_CHARS, max_size=40).map(str.strip)
words = texts.filter(bool)
tokens = st.text(
    st.characters(codec="ascii", categories=("L", "N"), include_characters="-_.:@/"),
    min_size=1,
    max_size=30,
)
offsets = st.integers(-12 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
times = st.builds(
    lambda when, tz: when.replace(tzinfo=tz),
    st.datetimes(datetime(2000, 1, 1), datetime(2100, 1, 1)).map(
        lambda d: d.replace(microsecond=0)
    ),
    offsets,
)
pairs = st.lists(st.tuples(words, words), max_size=3).map(tuple)
lats = st.floats(-90, 90, allow_nan=False)
lons = st.floats(-180, 180, allow_nan=False)


@st.composite
def rings(draw: st.DrawFn) -> tuple[tuple[float, float], ...]:
    points = draw(st.lists(st.tuples(lats, lons), min_size=3, max_size=8))
    return (*points, points[0])


areas = st.builds(
    CapArea,
    words,
    st.lists(rings(), max_size=2).map(tuple),
    st.lists(st.tuples(lats, lons, st.floats(0, 20000, allow_nan=False)), max_size=2).map(tuple),
    pairs,
)
infos = st.builds(
    CapInfo,
    language=st.sampled_from(["zh-CN", "en-US", "fr-CA"]),
    categories=st.lists(st.sampled_from(CATEGORIES), min_size=1, max_size=3).map(tuple),
    event=words,
    urgency=st.sampled_from(URGENCIES),
    severity=st.sampled_from(SEVERITIES),
    certainty=st.sampled_from([c for c in CERTAINTIES if c != "Very Likely"]),  # CAP 1.0 only
    headline=texts,
    description=texts,
    sender_name=texts,
    effective=st.none() | times,
    onset=st.none() | times,
    expires=st.none() | times,
    event_codes=pairs,
    parameters=pairs,
    areas=st.lists(areas, max_size=2).map(tuple),
)


@st.composite
def alerts(draw: st.DrawFn) -> CapAlert:
    msg_type = draw(st.sampled_from(MSG_TYPES))
    references = st.lists(st.builds(CapReference, tokens, tokens, times), max_size=3)
    if msg_type in ("Update", "Cancel"):
        references = references.filter(bool)
    return CapAlert(
        version="1.2",
        identifier=draw(tokens),
        sender=draw(tokens),
        sent=draw(times),
        status=draw(st.sampled_from(STATUSES)),
        msg_type=msg_type,
        scope=draw(st.sampled_from(SCOPES)),
        references=tuple(draw(references)),
        infos=tuple(draw(st.lists(infos, max_size=2))),
    )


@SEEDED
@given(alerts())
def test_any_alert_written_is_valid_cap_1_2_and_reads_back_the_same(alert: CapAlert) -> None:
    document = cap_bytes(write_cap(alert))
    XSD.validate(document.decode())
    assert exact(parse_cap(document)) == exact(alert)

"""Every file in shared/corpus/cap is handled: valid ones parse with the right
msgType, event, severity/urgency/certainty, expiry and area; invalid ones are refused
with a reason; the XXE attacks are refused without resolving anything."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import pytest

from pingan.intake.feeds.cap import CapAlert, FeedIndex, FeedRejected, parse_document
from pingan.intake.feeds.normalize import NotActionable, cap_to_signal, normalize_cap

CORPUS = Path(__file__).parent.parent / "data" / "cap-corpus"
FEEDS = Path(__file__).parent.parent / "data" / "feeds"

# file -> (msgType, event of first info, severity/urgency/certainty, expires, first areaDesc)
ALERTS = {
    "43b080713727.cap": (
        "Alert",
        "Homeland Security Advisory System Update",
        "Severe/Immediate/Likely",
        None,
        "U.S. nationwide and interests",
    ),
    "KAR0-0306112239-SW.cap": (
        "Alert",
        "Child Abduction",
        "Severe/Immediate/Likely",
        None,
        "Los Angeles County",
    ),
    "australia.cap": (
        "Alert",
        "Fire",
        "Minor/Expected/Observed",
        "2011-10-06T23:04:00+10:00",
        None,
    ),
    "canada.cap": (
        "Update",
        "thunderstorm",
        "Minor/Past/Observed",
        "2012-05-03T00:20:00+00:00",
        None,
    ),
    "canada_signed.cap": (
        "Update",
        "snowfall",
        "Moderate/Future/Likely",
        "2013-01-25T13:26:00+00:00",
        None,
    ),
    "earthquake-iso8859-1.cap": (
        "Alert",
        "Earthquake",
        "Unknown/Past/Likely",
        "2012-10-21T22:53:04+00:00",
        None,
    ),
    "earthquake.cap": (
        "Alert",
        "Earthquake",
        "Unknown/Past/Likely",
        "2010-09-02T00:09:25-05:00",
        None,
    ),
    "earthquake_signed.cap": (
        "Alert",
        "Earthquake",
        "Unknown/Past/Likely",
        "2011-09-13T17:15:38+00:00",
        None,
    ),
    "no_optional_fields.cap": ("Alert", None, None, None, None),
    "thunderstorm.cap": (
        "Alert",
        "SEVERE THUNDERSTORM",
        "Severe/Immediate/Observed",
        "2003-06-17T16:00:00-07:00",
        None,
    ),
    "wcatwc-warning.cap": (
        "Update",
        "Tsunami Warning",
        "Extreme/Immediate/Likely",
        "2011-09-02T12:36:50+00:00",
        None,
    ),
    "weather.cap": (
        "Alert",
        "Flash Flood Watch",
        "Severe/Expected/Possible",
        "2010-08-30T12:00:00-06:00",
        "Central and Southern Lewis and Clark",
    ),
}
REJECTED = {
    "canada_errors.cap": "alert.references: required for msgType Update",
    "invalid.cap": "alert.scope: required",
    "noaa_errors.cap": "alert.info[1].urgency: required",
    "xee.cap": "declares a DTD or entities",
    "xee.atom": "declares a DTD or entities",
}
# index feed -> (entries, embedded alerts, skipped reasons)
INDEXES = {
    "amber.atom": (1, 1, []),
    "canada_signed.atom": (1, 1, []),
    "earthquake_index.atom": (1, 0, []),
    "empty_weather_index.atom": (0, 0, []),
    "no_entries.atom": (0, 0, []),
    "weather.atom": (1, 1, []),
    "weather_index.atom": (2, 0, []),
    "ny_index.rss": (2, 0, []),
    "invalid.rss": (0, 0, ["item 1: no <link> to the CAP message"]),
    "invalid_element.atom": (0, 0, ["no <link> to a CAP message and no embedded alert"]),
    "no_id.atom": (0, 0, ["entry 1: no <id>"]),
    "no_link.atom": (0, 0, ["no <link> to a CAP message and no embedded alert"]),
    "no_title.atom": (0, 0, ["no <link> to a CAP message and no embedded alert"]),
    "weather_invalid.atom": (
        0,
        0,
        [
            "embedded CAP alert refused: alert.identifier: "
            "'INVALID,' contains a space, comma, < or &"
        ],
    ),
}


def test_every_corpus_file_has_an_expected_outcome() -> None:
    files = {p.name for p in CORPUS.iterdir() if p.name not in ("LICENSE", "README.md")}
    assert files == set(ALERTS) | set(REJECTED) | set(INDEXES)


@pytest.mark.parametrize("name", sorted(ALERTS))
def test_valid_alerts(name: str) -> None:
    msg_type, event, sev_urg_cert, expires, area = ALERTS[name]
    alert = parse_document((CORPUS / name).read_bytes())
    assert isinstance(alert, CapAlert)
    assert alert.msg_type == msg_type
    assert alert.status == "Actual"
    if msg_type == "Update":
        assert alert.references
    if event is None:
        assert alert.infos == ()
        return
    info = alert.infos[0]
    assert info.event == event
    assert f"{info.severity}/{info.urgency}/{info.certainty}" == sev_urg_cert
    assert info.expires == (datetime.fromisoformat(expires) if expires else None)
    assert info.areas, "every alert here describes its area"
    if area:
        assert info.areas[0].description.startswith(area)
    # Normalised records carry the same facts, one per <info> (language).
    records = normalize_cap(alert)
    assert len(records) == len(alert.infos)
    assert records[0]["event"] == event and records[0]["msg_type"] == msg_type
    # None of these foreign alerts is about Luohe: the system records, does not act.
    with pytest.raises(NotActionable):
        cap_to_signal(alert)


def test_multiple_infos_and_languages() -> None:
    alert = parse_document((CORPUS / "canada.cap").read_bytes())
    assert isinstance(alert, CapAlert)
    assert [i.language for i in alert.infos] == ["en-CA", "fr-CA"]


def test_iso_8859_1_decodes() -> None:
    alert = parse_document((CORPUS / "earthquake-iso8859-1.cap").read_bytes())
    assert isinstance(alert, CapAlert)
    text = " ".join(
        f"{i.headline} {i.description} {a.description}" for i in alert.infos for a in i.areas
    )
    assert any(ord(ch) > 127 for ch in text), "the Latin-1 characters survive decoding"
    assert "\ufffd" not in text


def test_area_shapes_parse() -> None:
    thunder = parse_document((CORPUS / "thunderstorm.cap").read_bytes())
    assert isinstance(thunder, CapAlert)
    assert thunder.infos[0].areas[0].polygons[0][0] == thunder.infos[0].areas[0].polygons[0][-1]
    quake = parse_document((CORPUS / "earthquake.cap").read_bytes())
    assert isinstance(quake, CapAlert)
    assert quake.infos[0].areas[0].circles


@pytest.mark.parametrize("name", sorted(REJECTED))
def test_invalid_documents_are_refused_with_a_reason(name: str) -> None:
    with pytest.raises(FeedRejected, match=re.escape(REJECTED[name])):
        parse_document((CORPUS / name).read_bytes())


def test_xxe_is_never_resolved(tmp_path: Path) -> None:
    """Even a local file entity is refused, not expanded."""
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    doc = (
        f'<?xml version="1.0"?><!DOCTYPE alert [<!ENTITY s SYSTEM "file://{secret}">]>'
        '<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&s;</identifier>'
        "</alert>"
    ).encode()
    with pytest.raises(FeedRejected) as caught:
        parse_document(doc)
    assert "TOP-SECRET" not in str(caught.value)


@pytest.mark.parametrize("name", sorted(INDEXES))
def test_index_feeds(name: str) -> None:
    entries, embedded, skipped = INDEXES[name]
    index = parse_document((CORPUS / name).read_bytes())
    assert isinstance(index, FeedIndex)
    assert len(index.entries) == entries
    assert sum(1 for e in index.entries if e.alert is not None) == embedded
    assert len(index.skipped) == len(skipped)
    for reason, expected in zip(index.skipped, skipped, strict=True):
        assert expected in reason


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "document is empty"),
        (b"<html><body>503</body></html>", "neither a CAP alert nor an Atom/RSS feed"),
        (b"<alert", "not well-formed XML"),
        (b"<alert xmlns='urn:example'/>", "not a CAP alert"),
        (b" " * (1024 * 1024 + 1), "the limit is"),
    ],
)
def test_garbage_is_refused(data: bytes, reason: str) -> None:
    with pytest.raises(FeedRejected, match=reason):
        parse_document(data)


def test_chinese_signal_maps_to_districts_and_level() -> None:
    alert = parse_document((FEEDS / "cma-blizzard-yellow.cap").read_bytes())
    assert isinstance(alert, CapAlert)
    signal, headline = cap_to_signal(alert)
    assert (signal.event, signal.level, signal.msg_type) == ("blizzard", "yellow", "Alert")
    assert signal.districts == ("yuanhui", "yancheng")
    assert headline == "漯河市气象台发布暴雪黄色预警信号"
    update = parse_document((FEEDS / "cma-blizzard-orange-update.cap").read_bytes())
    assert isinstance(update, CapAlert)
    upgraded, _ = cap_to_signal(update)
    assert (upgraded.level, upgraded.references) == ("orange", ("41110041600000_20260120053000",))
    cancel = parse_document((FEEDS / "cma-blizzard-cancel.cap").read_bytes())
    assert isinstance(cancel, CapAlert)
    assert cap_to_signal(cancel)[0].msg_type == "Cancel"

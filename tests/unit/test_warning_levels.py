"""The level of an official warning is read from its structured fields first, then from
the colour its headline moves the signal *to*, never from the first colour it mentions;
a headline that lifts the signal (解除) ends it. Through the real parser: CAP bytes in,
the WarningSignal the playbooks act on out."""

from __future__ import annotations

from xml.sax.saxutils import escape

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pingan.city import load_city
from pingan.intake.feeds.cap import CapAlert, parse_cap
from pingan.intake.feeds.normalize import cap_to_signal, map_info, normalize_cap
from pingan.intake.warnings import WarningInvalid, parse_signal
from tests.conftest import NOW

SEEDED = settings(max_examples=300, derandomize=True, deadline=None)
SENDER = "luohe-observatory@example.cn"


def cap(
    headline: str,
    event: str = "暴雪预警",
    severity: str = "Moderate",
    msg_type: str = "Update",
    parameters: tuple[tuple[str, str], ...] = (),
    event_codes: tuple[tuple[str, str], ...] = (),
    language: str = "zh-CN",
) -> CapAlert:
    """A CMA-shaped CAP 1.2 signal for 源汇区, as bytes through our parser."""

    def pairs(tag: str, items: tuple[tuple[str, str], ...]) -> str:
        return "".join(
            f"<{tag}><valueName>{escape(n)}</valueName><value>{escape(v)}</value></{tag}>"
            for n, v in items
        )

    references = (
        f"<references>{SENDER},LH-OLD,2026-01-20T05:30:00+08:00</references>"
        if msg_type != "Alert"
        else ""
    )
    xml = f"""<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>LH-NEW</identifier><sender>{SENDER}</sender>
  <sent>2026-01-20T09:00:00+08:00</sent><status>Actual</status>
  <msgType>{msg_type}</msgType><scope>Public</scope>{references}
  <info>
    <language>{language}</language><category>Met</category><event>{escape(event)}</event>
    <urgency>Expected</urgency><severity>{severity}</severity><certainty>Likely</certainty>
    {pairs("eventCode", event_codes)}<headline>{escape(headline)}</headline>
    {pairs("parameter", parameters)}
    <area><areaDesc>源汇区</areaDesc>
      <geocode><valueName>GB/T 2260</valueName><value>411102</value></geocode></area>
  </info>
</alert>"""
    return parse_cap(xml.encode())


# Headline -> level, with nothing structured and an event name that names no colour.
WORDINGS = {
    # upgrades
    "漯河市气象台将暴雪黄色预警信号升级为橙色": "orange",
    "漯河市气象台2026年01月20日09时00分将暴雪黄色预警信号升级为橙色预警信号": "orange",
    "漯河市气象台将暴雪橙色预警信号升级为暴雪红色预警信号": "red",
    "漯河市气象台将暴雪预警信号由蓝色提升为黄色": "yellow",
    "The blizzard yellow warning is upgraded to orange": "orange",
    # downgrades
    "漯河市气象台将暴雪橙色预警信号降级为黄色": "yellow",
    "漯河市气象台将暴雪红色预警信号降为蓝色": "blue",
    "Blizzard warning downgraded from orange to yellow": "yellow",
    # adjustments
    "漯河市气象台将暴雪黄色预警信号调整为蓝色预警信号": "blue",
    "漯河市气象台将暴雪蓝色预警信号更改为橙色": "orange",
    # plain issues
    "漯河市气象台发布暴雪黄色预警信号": "yellow",
    "漯河市气象台发布暴雪橙色预警信号，同时解除暴雪黄色预警信号": "orange",
    "Heavy snow expected, reduced visibility: blizzard yellow warning issued": "yellow",
}


@pytest.mark.parametrize(("headline", "level"), WORDINGS.items())
def test_the_headline_is_read_at_the_colour_it_moves_to(headline: str, level: str) -> None:
    signal, _ = cap_to_signal(cap(headline))
    assert (signal.event, signal.level, signal.msg_type) == ("blizzard", level, "Update")


def test_an_upgrade_is_read_at_the_new_level_though_the_event_name_says_the_old() -> None:
    alert = cap("漯河市气象台将暴雪黄色预警信号升级为橙色", event="暴雪黄色预警")
    assert cap_to_signal(alert)[0].level == "orange"
    [record] = normalize_cap(alert)
    assert (record["level"], record["level_from"]) == ("orange", "headline")


@pytest.mark.parametrize(
    ("headline", "msg_type", "language"),
    [
        ("漯河市气象台解除暴雪橙色预警信号", "Update", "zh-CN"),
        ("漯河市气象台解除暴雪预警信号", "Alert", "zh-CN"),
        ("Luohe Observatory: blizzard yellow warning lifted", "Update", "en-US"),
        ("Blizzard orange warning cancelled", "Cancel", "en-US"),
    ],
)
def test_a_lift_ends_the_signal_whatever_its_msg_type(
    headline: str, msg_type: str, language: str
) -> None:
    signal, _ = cap_to_signal(cap(headline, msg_type=msg_type, language=language))
    assert (signal.event, signal.msg_type) == ("blizzard", "Cancel")
    if msg_type != "Alert":
        assert signal.references == ("LH-OLD",)


def test_issuing_one_colour_while_lifting_another_is_no_lift() -> None:
    signal, _ = cap_to_signal(
        cap("漯河市气象台发布暴雪红色预警信号同时解除暴雪橙色预警信号", msg_type="Alert")
    )
    assert (signal.level, signal.msg_type) == ("red", "Alert")


@pytest.mark.parametrize(
    ("headline", "severity", "level"),
    [
        # several colours and no verb saying which is meant: not the first, the severity
        ("漯河市气象台暴雪黄色、橙色预警信号", "Extreme", "red"),
        ("Blizzard: yellow or orange warning", "Minor", "blue"),
        # English colour words are whole words: "expected" and "reduced" are not red
        ("Heavy snow expected, reduced visibility", "Moderate", "yellow"),
    ],
)
def test_without_a_clear_colour_the_severity_decides(
    headline: str, severity: str, level: str
) -> None:
    alert = cap(headline, severity=severity)
    assert cap_to_signal(alert)[0].level == level
    assert normalize_cap(alert)[0]["level_from"] == "severity"


def test_an_event_code_naming_a_colour_wins_over_the_headline() -> None:
    alert = cap(
        "漯河市气象台发布暴雪黄色预警信号",
        event_codes=(("CMA_SIGNAL", "11B04"), ("CMA_SIGNAL_LEVEL", "BLIZZARD_ORANGE")),
    )
    assert cap_to_signal(alert)[0].level == "orange"
    assert normalize_cap(alert)[0]["level_from"] == "eventCode CMA_SIGNAL_LEVEL"


def test_a_level_parameter_wins_over_an_event_code() -> None:
    alert = cap(
        "漯河市气象台发布暴雪黄色预警信号",
        parameters=(("level", "红色"),),
        event_codes=(("CMA_SIGNAL_LEVEL", "BLIZZARD_ORANGE"),),
    )
    assert cap_to_signal(alert)[0].level == "red"


# ---- the structured field always wins --------------------------------------------

COLOUR_WORDS = ["蓝色", "黄色", "橙色", "红色", "blue", "yellow", "orange", "red", "Red"]
PIECES = [
    *COLOUR_WORDS,
    "升级为",
    "降级为",
    "调整为",
    "降为",
    "解除",
    "发布",
    "，",
    "。",
    "暴雪",
    "预警信号",
    "漯河市气象台",
    " upgraded to ",
    " downgraded to ",
    " lifted",
    " expected ",
    ", ",
]
SPELLINGS = {
    "blue": ["蓝色", "blue", "Blue", " BLUE "],
    "yellow": ["黄色", "yellow", "Yellow"],
    "orange": ["橙色", "orange", "ORANGE"],
    "red": ["红色", "red", "Red"],
}
XML_TEXT = st.characters(codec="utf-8", exclude_categories=("Cs", "Cc"))
headlines = st.lists(
    st.one_of(st.sampled_from(PIECES), st.text(XML_TEXT, max_size=6)), max_size=14
).map("".join)


@SEEDED
@given(
    level=st.sampled_from(sorted(SPELLINGS)),
    data=st.data(),
    headline=headlines,
    event=headlines,
    name=st.sampled_from(["level", "Level", "cma_level", "colour", "预警颜色"]),
)
def test_the_level_parameter_always_wins_over_any_headline(
    level: str, data: st.DataObject, headline: str, event: str, name: str
) -> None:
    spelling = data.draw(st.sampled_from(SPELLINGS[level]))
    alert = cap(
        headline,
        event=f"暴雪{event}",
        severity=data.draw(st.sampled_from(["Minor", "Moderate", "Severe", "Extreme"])),
        parameters=(("other", "红色"), (name, spelling)),
    )
    mapped = map_info(alert.infos[0], load_city())
    assert (mapped.kind, mapped.level) == ("blizzard", level)
    assert mapped.level_from == f"parameter {name.lower()}"


# ---- the CMA-style JSON names its level in one field -----------------------------


def test_json_signals_take_the_level_in_either_language_and_any_case() -> None:
    base = {"id": "LH-1", "event": "暴雪", "districts": ["源汇区"]}
    assert parse_signal({**base, "level": "Orange"}, NOW).level == "orange"
    assert parse_signal({**base, "level": "橙色"}, NOW).level == "orange"
    with pytest.raises(WarningInvalid, match="level: '橙' is not blue/yellow/orange/red"):
        parse_signal({**base, "level": "橙"}, NOW)

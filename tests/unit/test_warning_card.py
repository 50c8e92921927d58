"""A citizen warning as a WeChat card's five fields: every template, level and audience
fits 20 characters a field, in Chinese, cut where a reader expects a cut."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from alerts.citizen_warnings import draft_texts
from alerts.render import CARD_FIELD_MAX, fit, fit_list, warning_advice, warning_card
from pingan.city import load_city
from playbooks.templates import load_templates

ISSUED = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)  # 16:00 in Luohe


@pytest.mark.parametrize(
    ("text", "fitted"),
    [
        ("暴雪", "暴雪"),
        ("一二三四五六七八九十一二三四五六七八九十", "一二三四五六七八九十一二三四五六七八九十"),
        ("远离地下通道、涵洞和低洼地带，勿涉水行车", "远离地下通道、涵洞和低洼地带，勿涉水行车"),
        # cut at the last clause break that keeps at least half (、 is not one)
        ("减少外出，注意防滑，车辆慢行；桥梁、涵洞路段已优先除雪", "减少外出，注意防滑，车辆慢行"),
        # no clause break late enough: cut, and say so
        ("一二三，四五六七八九十一二三四五六七八九十一", "一二三，四五六七八九十一二三四五六七八…"),
        ("  两行\n文字  ", "两行 文字"),  # one line
    ],
)
def test_fit(text: str, fitted: str) -> None:
    assert fit(text) == fitted
    assert len(fitted) <= CARD_FIELD_MAX


def test_a_long_list_names_what_fits_and_counts_the_rest() -> None:
    names = ["源汇区", "郾城区", "召陵区", "经济技术开发区", "西城区", "舞阳县"]
    assert fit_list(names[:3]) == "源汇区、郾城区、召陵区"
    assert fit_list(names) == "源汇区、郾城区、召陵区等6地"
    long = "一二三四五六七八九十一二三四五六七八九十一二"
    assert fit_list([long]) == "一二三四五六七八九十一二三四五六七八九…"
    assert fit_list([long, "西城区"]) == "一二三四五六七八九十一二三四五六…等2地"
    assert fit_list(names, whole="全市") == "全市"


def test_advice_is_the_sentence_after_the_headline() -> None:
    text = "【漯河城管】源汇区暴雪橙色预警。减少外出，注意防滑。求助请拨12345。"
    assert warning_advice(text) == "减少外出，注意防滑"
    assert warning_advice("【漯河城管】源汇区暴雪预警解除") == "源汇区暴雪预警解除"
    assert warning_advice("") == ""


def test_the_card_of_an_orange_snowstorm_warning() -> None:
    text = draft_texts("blizzard-orange", ["yuanhui"]).text_zh
    card = warning_card(7, "blizzard", "orange", "Alert", ["源汇区"], ISSUED, text)
    assert card.fields() == {
        "event": "暴雪",
        "level": "橙色预警",
        "area": "源汇区",
        "time": "2026年11月27日 16:00",
        "advice": "减少外出，注意防滑，车辆慢行",
    }
    cancel = warning_card(8, "blizzard", "orange", "Cancel", ["源汇区"], ISSUED, text)
    assert cancel.level == "橙色预警（解除）"


@pytest.mark.parametrize("template", sorted(load_templates()))
@pytest.mark.parametrize("audience", [["yuanhui"], ["yuanhui", "yancheng", "jingkai"], "all"])
@pytest.mark.parametrize("msg_type", ["Alert", "Update", "Cancel"])
def test_every_template_fits_the_card(template: str, audience: object, msg_type: str) -> None:
    city = load_city()
    districts = list(city.districts) if audience == "all" else list(audience)  # type: ignore[call-overload]
    event, _, level = template.rpartition("-")
    if level not in ("blue", "yellow", "orange", "red"):  # a playbook's advice template
        event, level = "road_icing", "orange"  # the longest event name
    text = draft_texts(template, districts).text_zh
    card = warning_card(
        1,
        event,
        level,
        msg_type,
        [city.districts[d].zh for d in districts],
        ISSUED,
        text,
        whole_city=audience == "all",
    )
    for name, value in card.fields().items():
        assert 0 < len(value) <= CARD_FIELD_MAX, (name, value)
        assert not re.search("[A-Za-z]", value), (name, value)  # Chinese, no English word

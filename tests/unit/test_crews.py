import re
from datetime import UTC, datetime, time

import pytest

from pingan.crews import (
    Crew,
    CrewReason,
    Override,
    RosterError,
    Shift,
    choose_crews,
    crew_from_row,
    crew_to_row,
    load_roster,
    parse_roster,
)
from pingan.vocabulary import CREW_REASON_RULES, SKILLS, crew_reason

# 2026-01-20 10:00 in Luohe (+08:00) is 02:00 UTC.
DAY = datetime(2026, 1, 20, 2, 0, tzinfo=UTC)
NIGHT = datetime(2026, 1, 20, 15, 0, tzinfo=UTC)  # 23:00 local
ALL_DAY = Shift()
DAY_SHIFT = Shift(time(8, 0), time(20, 0))


def crew(
    cid: str,
    lat: float,
    lon: float,
    skills=("tree",),
    capacity: int = 1,  # type: ignore[no-untyped-def]
    unit: str = "u1",
    segments=(),
    shift: Shift = ALL_DAY,
    overrides=(),
) -> Crew:
    return Crew(
        cid,
        cid,
        "",
        "+8610000000000",
        tuple(skills),
        unit,
        lat,
        lon,
        capacity,
        ("chainsaw",),
        tuple(segments),
        shift,
        tuple(overrides),
    )


OWNER = crew("owner", 33.60, 114.06, unit="u1", segments=("yuanhui-01",))
MATE = crew("mate", 33.61, 114.07, unit="u1")
NEAR = crew("near", 33.5715, 114.0155, unit="u2")
FAR = crew("far", 33.65, 114.10, unit="u3")
DRAIN = crew("drain", 33.571, 114.015, skills=("drainage",), unit="u2")
DAYS = crew("days", 33.5716, 114.0156, unit="u2", shift=DAY_SHIFT)
STORM = crew(
    "storm",
    33.5716,
    114.0156,
    unit="u2",
    shift=DAY_SHIFT,
    overrides=(
        Override(datetime(2026, 1, 20, 12, tzinfo=UTC), datetime(2026, 1, 21, 0, tzinfo=UTC), True),
    ),
)
SICK = crew(
    "sick",
    33.5714,
    114.0154,
    unit="u2",
    overrides=(
        Override(datetime(2026, 1, 19, tzinfo=UTC), datetime(2026, 1, 22, tzinfo=UTC), False),
    ),
)

CASES = [
    # (name, crews, load, exclude, count, segment, now, recent, expected ids, why)
    (
        "segment owner goes, though farther",
        [NEAR, MATE, OWNER],
        {},
        set(),
        1,
        "yuanhui-01",
        DAY,
        {},
        ["owner"],
        "owns road segment yuanhui-01",
    ),
    (
        "owner busy: same unit",
        [NEAR, MATE, OWNER],
        {"owner": 1},
        set(),
        1,
        "yuanhui-01",
        DAY,
        {},
        ["mate"],
        "same unit u1 as the segment owner",
    ),
    (
        "owner and unit busy: nearest",
        [NEAR, MATE, OWNER, FAR],
        {"owner": 1, "mate": 1},
        set(),
        1,
        "yuanhui-01",
        DAY,
        {},
        ["near"],
        "nearest available",
    ),
    (
        "no segment known: nearest",
        [FAR, NEAR, OWNER],
        {},
        set(),
        1,
        None,
        DAY,
        {},
        ["near"],
        "nearest available",
    ),
    ("skill must match", [DRAIN, FAR], {}, set(), 1, None, DAY, {}, ["far"], ""),
    (
        "already on the incident (declined) is not asked again",
        [NEAR, FAR],
        {},
        {"near"},
        1,
        None,
        DAY,
        {},
        ["far"],
        "",
    ),
    ("off shift at night", [DAYS, FAR], {}, set(), 1, None, NIGHT, {}, ["far"], ""),
    ("on shift by day", [DAYS, FAR], {}, set(), 1, None, DAY, {}, ["days"], ""),
    (
        "storm override puts a day crew on at night",
        [STORM, FAR],
        {},
        set(),
        1,
        None,
        NIGHT,
        {},
        ["storm"],
        "",
    ),
    ("sick leave override takes a crew off", [SICK, FAR], {}, set(), 1, None, DAY, {}, ["far"], ""),
    (
        "fairness among equals: fewer recent jobs first",
        [crew("a", 33.5715, 114.0155), crew("b", 33.5715, 114.0155)],
        {},
        set(),
        1,
        None,
        DAY,
        {"a": 3, "b": 1},
        ["b"],
        "1 in the last 24 h",
    ),
    (
        "several crews, best first",
        [FAR, MATE, OWNER, NEAR],
        {},
        set(),
        3,
        "yuanhui-01",
        DAY,
        {},
        ["owner", "mate", "near"],
        "",
    ),
    ("nobody with the skill on shift", [DRAIN, DAYS], {}, set(), 1, None, NIGHT, {}, [], ""),
]


@pytest.mark.parametrize(
    ("name", "crews", "load", "exclude", "count", "segment", "now", "recent", "expected", "why"),
    CASES,
    ids=[c[0] for c in CASES],
)
def test_choose_crews(
    name,
    crews,
    load,
    exclude,
    count,
    segment,
    now,
    recent,
    expected,  # type: ignore[no-untyped-def]
    why,
) -> None:
    chosen = choose_crews(
        "tree",
        count,
        33.5712,
        114.0153,
        crews,
        load,
        frozenset(exclude),
        ("chainsaw",),
        segment,
        now,
        recent,
    )
    assert [c.crew.id for c in chosen] == expected
    if why:
        assert why in chosen[0].why


def test_a_choice_keeps_its_reason_as_data_and_its_english_as_before() -> None:
    """The audit trail and the logs keep the English they always had; the console words
    the same data in the dispatcher's language."""
    [chosen] = choose_crews(
        "tree", 1, 33.5712, 114.0153, [NEAR, MATE, OWNER], {}, segment="yuanhui-01", now=DAY
    )
    assert chosen.reason == CrewReason("segment_owner", "tree", "yuanhui-01", "u1", 5.2, 0, 0)
    assert chosen.why == (
        "owns road segment yuanhui-01: 5.2 km from base, 0 active task(s), 0 in the last 24 h"
    )
    [nearest] = choose_crews("tree", 1, None, None, [NEAR], {"near": 0}, recent_assignments={})
    assert nearest.reason.rule == "nearest" and nearest.reason.km is None
    assert nearest.why == (
        "nearest available with skill 'tree': no location given, 0 active task(s), "
        "0 in the last 24 h"
    )


REASON_WORDS = [
    # (reason fields, the segment's name, Chinese, English)
    (
        {"rule": "segment_owner", "skill": "tree", "segment": "yuanhui-01", "unit": "u1"}
        | {"km": 3.2, "load": 1, "recent": 2},
        "人民路",
        "负责该路段（人民路）：距驻地3.2公里，手头任务1项，近24小时派单2次",
        "owns road segment yuanhui-01 (人民路): 3.2 km from base, 1 active task(s), "
        "2 in the last 24 h",
    ),
    (
        {"rule": "segment_owner", "skill": "tree", "segment": "x-9", "unit": "u1"}
        | {"km": 0.04, "load": 0, "recent": 0},
        None,
        "负责该路段：距驻地0.0公里，手头任务0项，近24小时派单0次",
        "owns road segment x-9: 0.0 km from base, 0 active task(s), 0 in the last 24 h",
    ),
    (
        {"rule": "owner_unit", "skill": "tree", "segment": "yuanhui-01", "unit": "yuanhui-01"}
        | {"km": 1.0, "load": 0, "recent": 5},
        "人民路",
        "与路段负责班组同一单元（负责班组忙或不在班）：距驻地1.0公里，手头任务0项，近24小时派单5次",
        "same unit yuanhui-01 as the segment owner (owner busy or off shift): 1.0 km from base,"
        " 0 active task(s), 5 in the last 24 h",
    ),
    (
        {"rule": "nearest", "skill": "snow_ice", "segment": None, "unit": "u2"}
        | {"km": None, "load": 2, "recent": 0},
        None,
        "最近的空闲除雪破冰班组：报告未给出位置，手头任务2项，近24小时派单0次",
        "nearest available with skill 'snow_ice': no location given, 2 active task(s), "
        "0 in the last 24 h",
    ),
]


@pytest.mark.parametrize(("reason", "segment_name", "zh", "en"), REASON_WORDS)
def test_a_reason_in_each_language(
    reason: dict, segment_name: str | None, zh: str, en: str
) -> None:
    assert crew_reason(reason, "zh", segment_name) == zh
    assert crew_reason(reason, "en", segment_name) == en


@pytest.mark.parametrize("skill", [*SKILLS, "unknown"])
@pytest.mark.parametrize("rule", CREW_REASON_RULES)
def test_a_reason_in_chinese_names_no_code(rule: str, skill: str) -> None:
    """Segment and unit ids, skill codes: none of them shows in the Chinese (an unknown
    skill is the one code left, as itself)."""
    reason = {"rule": rule, "skill": skill, "segment": "yuanhui-01", "unit": "city-01"}
    words = crew_reason(reason | {"km": 1.26, "load": 1, "recent": 0}, "zh", "人民路")
    latin = re.findall(r"[A-Za-z]{2,}", words)
    assert latin == ([] if skill in SKILLS or rule != "nearest" else ["unknown"]), words


def test_night_shift_wraps_midnight() -> None:
    night = Shift(time(20, 0), time(8, 0))
    assert night.covers(NIGHT) and not night.covers(DAY)


def test_roster_rows_round_trip() -> None:
    class Row:
        def __init__(self, values: dict) -> None:
            self._mapping = values

    for original in (STORM, OWNER):
        back = crew_from_row(Row({"id": original.id, **crew_to_row(original)}))
        assert back == original


def test_roster_errors_name_the_row() -> None:
    with pytest.raises(RosterError, match=r"crews\[2\]: missing phone"):
        parse_roster(
            "crews:\n  - {id: a, name: A, phone: '1', skills: [tree], home: [1, 2]}\n"
            "  - {id: b, name: B, skills: [tree], home: [1, 2]}\n",
            "roster.yaml",
        )
    with pytest.raises(RosterError, match=r"crews\[1\].shift: 'days' is not"):
        parse_roster(
            "crews:\n  - {id: a, name: A, phone: '1', skills: [tree], home: [1, 2], shift: days}\n",
            "roster.yaml",
        )
    with pytest.raises(RosterError, match=r"staff\[1\]: a supervisor needs a unit"):
        parse_roster(
            "crews: []\nstaff:\n  - {role: supervisor, name: X, phone: '1'}\n", "roster.yaml"
        )


def test_a_crew_is_named_in_each_language_or_in_one() -> None:
    roster = parse_roster(
        "crews:\n"
        "  - {id: a, name: {zh: 园林抢险一班, en: Tree crew 1}, phone: '1', skills: [tree],"
        " home: [1, 2]}\n"
        "  - {id: b, name: 排水抢险班, phone: '1', skills: [drainage], home: [1, 2]}\n",
        "roster.yaml",
    )
    assert [(c.name, c.name_en) for c in roster.crews] == [
        ("园林抢险一班", "Tree crew 1"),
        ("排水抢险班", ""),
    ]
    for bad in ("{en: Tree crew}", "{zh: 班, fr: équipe}", "{zh: ''}", "''"):
        with pytest.raises(RosterError, match=r"crews\[1\]\.name: expected text or"):
            parse_roster(
                f"crews:\n  - {{id: a, name: {bad}, phone: '1', skills: [tree], home: [1, 2]}}\n",
                "roster.yaml",
            )


def test_every_demo_crew_has_a_name_in_each_language() -> None:
    from pingan.settings import PACKAGE_ROOT

    roster = load_roster(PACKAGE_ROOT / "data" / "roster.yaml")
    for c in roster.crews:
        assert c.name_en and not re.search(r"[A-Za-z]", c.name), c.id

from datetime import UTC, datetime, time

import pytest

from pingan.crews import (
    Crew,
    Override,
    RosterError,
    Shift,
    choose_crews,
    crew_from_row,
    crew_to_row,
    parse_roster,
)

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

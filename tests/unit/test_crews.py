import pytest

from pingan.crews import Crew, RosterError, choose_crews, parse_roster


def crew(cid: str, lat: float, lon: float, skills=("tree",), capacity: int = 1) -> Crew:
    return Crew(cid, cid, "", "+8610000000000", tuple(skills), "u1", lat, lon, capacity)


NEAR = crew("near", 33.571, 114.015)
FAR = crew("far", 33.60, 114.06)
DRAIN = crew("drain", 33.571, 114.015, skills=("drainage",))
BIG = crew("big", 33.59, 114.03, capacity=2)

CASES = [
    # (name, crews, load, exclude, count, lat/lon, expected ids)
    ("nearest wins", [FAR, NEAR], {}, set(), 1, (33.5712, 114.0153), ["near"]),
    ("busy nearest is skipped", [FAR, NEAR], {"near": 1}, set(), 1, (33.5712, 114.0153), ["far"]),
    ("skill must match", [DRAIN, FAR], {}, set(), 1, (33.5712, 114.0153), ["far"]),
    ("capacity counts", [BIG], {"big": 1}, set(), 1, (33.5712, 114.0153), ["big"]),
    ("full capacity excluded", [BIG], {"big": 2}, set(), 1, (33.5712, 114.0153), []),
    ("already on incident excluded", [NEAR, FAR], {}, {"near"}, 1, (33.5712, 114.0153), ["far"]),
    (
        "several crews, nearest first",
        [FAR, BIG, NEAR],
        {},
        set(),
        2,
        (33.5712, 114.0153),
        ["near", "big"],
    ),
    ("nobody with the skill", [DRAIN], {}, set(), 1, (33.5712, 114.0153), []),
    ("no location: least loaded, then id", [FAR, BIG], {"big": 1}, set(), 1, (None, None), ["far"]),
]


@pytest.mark.parametrize(
    ("name", "crews", "load", "exclude", "count", "where", "expected"),
    CASES,
    ids=[c[0] for c in CASES],
)
def test_choose_crews(name, crews, load, exclude, count, where, expected) -> None:
    chosen = choose_crews("tree", count, where[0], where[1], crews, load, frozenset(exclude))
    assert [c.crew.id for c in chosen] == expected
    for choice in chosen:
        assert "skill 'tree'" in choice.why


def test_roster_errors_name_the_row() -> None:
    with pytest.raises(RosterError, match=r"crews\[2\]: missing phone"):
        parse_roster(
            "crews:\n  - {id: a, name: A, phone: '1', skills: [tree], home: [1, 2]}\n"
            "  - {id: b, name: B, skills: [tree], home: [1, 2]}\n",
            "roster.yaml",
        )
    with pytest.raises(RosterError, match=r"crews\[2\].id: duplicate crew id 'a'"):
        parse_roster(
            "crews:\n  - {id: a, name: A, phone: '1', skills: [tree], home: [1, 2]}\n"
            "  - {id: a, name: B, phone: '2', skills: [tree], home: [1, 2]}\n",
            "roster.yaml",
        )

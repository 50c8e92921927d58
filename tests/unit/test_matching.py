"""The matcher as tables: event + open incidents in, decisions out, for every playbook
and every level it defines."""

from __future__ import annotations

from datetime import timedelta

import pytest

from pingan.core.events import (
    AttachToIncident,
    ClockTick,
    EndWarnings,
    Ignored,
    IncidentView,
    OpenIncident,
    ReportReceived,
    ResolveIncident,
    ThresholdCrossed,
    UpgradeIncident,
    WarningSignal,
)
from pingan.core.matching import match
from playbooks.index import PlaybookIndex
from playbooks.model import Playbook, ReportTrigger, ThresholdTrigger, WarningTrigger
from tests.conftest import NOW, PLAYBOOKS_DIR


def warning(
    level: str,
    event: str = "blizzard",
    msg: str = "Alert",
    wid: str = "W1",
    districts: tuple[str, ...] = ("yuanhui",),
    refs: tuple[str, ...] = (),
    expires_in_h: float | None = 12,
) -> WarningSignal:
    expires = NOW + timedelta(hours=expires_in_h) if expires_in_h is not None else None
    return WarningSignal(wid, event, level, msg, districts, NOW, expires, refs)


def threshold(
    metric: str, window: int, value: float, district: str = "yuanhui", cleared: bool = False
) -> ThresholdCrossed:
    return ThresholdCrossed(metric, window, value, district, NOW, cleared)


def report(
    category: str, lat: float = 33.5712, lon: float = 114.0153, rid: int = 1, minutes: float = 0
) -> ReportReceived:
    return ReportReceived(rid, category, lat, lon, NOW + timedelta(minutes=minutes))


def district_incident(
    index: PlaybookIndex,
    playbook_id: str,
    level: str,
    iid: int = 7,
    warnings: dict | None = None,
    thresholds: bool = False,
    district: str = "yuanhui",
) -> IncidentView:
    return IncidentView(
        iid,
        index.playbooks[playbook_id],
        level,
        "district",
        district,
        33.565,
        114.005,
        warnings=warnings or {},
        thresholds_active=thresholds,
    )


def site_incident(
    index: PlaybookIndex, playbook_id: str, level: str = "routine", iid: int = 3, count: int = 1
) -> IncidentView:
    return IncidentView(
        iid, index.playbooks[playbook_id], level, "site", None, 33.5712, 114.0153, count, NOW
    )


# ---- every playbook, every level ------------------------------------------------


def _level_cases() -> list[tuple[str, str, object]]:
    """For each playbook and each of its levels, an event that opens an incident at
    exactly that level (from the playbook's own triggers)."""
    from playbooks.loader import load_playbooks

    cases = []
    for playbook in load_playbooks(PLAYBOOKS_DIR).values():
        for level in playbook.levels:
            cases.append((playbook.id, level, _event_for(playbook, level)))
    return cases


def _event_for(playbook: Playbook, level: str) -> object:
    for trigger in playbook.triggers:
        if isinstance(trigger, WarningTrigger) and level in ("blue", "yellow", "orange", "red"):
            from pingan.vocabulary import level_rank

            if level_rank(level) >= level_rank(trigger.min_level):
                return warning(level, event=trigger.event)
    for trigger in playbook.triggers:
        if isinstance(trigger, ThresholdTrigger) and trigger.level == level:
            return threshold(trigger.metric, trigger.window_h, trigger.value)
    for trigger in playbook.triggers:
        if isinstance(trigger, ReportTrigger) and trigger.level == level:
            return ("reports", trigger.category, trigger.min_reports)
    raise AssertionError(f"{playbook.id}: nothing reaches level {level}")


LEVEL_CASES = _level_cases()


def test_all_six_playbooks_are_covered() -> None:
    assert {c[0] for c in LEVEL_CASES} == {
        "snow-removal",
        "flood-drainage",
        "fallen-trees",
        "road-icing",
        "streetlight-outage",
        "manhole-cover",
    }
    assert len(LEVEL_CASES) == 22


@pytest.mark.parametrize(
    ("playbook_id", "level", "event"), LEVEL_CASES, ids=[f"{c[0]}-{c[1]}" for c in LEVEL_CASES]
)
def test_each_level_is_reached_and_has_actions(index, playbook_id, level, event) -> None:
    if isinstance(event, tuple):  # n corroborating reports at one place
        _, category, n = event
        incidents: list[IncidentView] = []
        decisions = match(report(category), incidents, index, NOW)
        if n > 1:
            incidents = [site_incident(index, playbook_id, "routine", count=n - 1)]
            decisions = match(report(category, rid=n), incidents, index, NOW)
            assert decisions == [
                UpgradeIncident(3, "routine", level, f"{n} reports corroborate incident 3")
            ]
        else:
            [opened] = decisions
            assert isinstance(opened, OpenIncident)
            assert (opened.playbook.id, opened.level, opened.scope) == (playbook_id, level, "site")
    else:
        opened = [
            d
            for d in match(event, [], index, NOW)
            if isinstance(d, OpenIncident) and d.playbook.id == playbook_id
        ]
        assert [(d.level, d.scope, d.district) for d in opened] == [(level, "district", "yuanhui")]
    actions = index.playbooks[playbook_id].actions_at(level)
    assert actions.dispatch, f"{playbook_id} {level}: a level that dispatches nobody"


# ---- warnings -------------------------------------------------------------------


def test_blizzard_yellow_opens_one_incident_per_district(index) -> None:
    decisions = match(warning("yellow", districts=("yuanhui", "yancheng")), [], index, NOW)
    assert [(d.playbook.id, d.level, d.district) for d in decisions] == [
        ("snow-removal", "yellow", "yuanhui"),
        ("snow-removal", "yellow", "yancheng"),
    ]


def test_upgrade_raises_the_level_never_duplicates(index) -> None:
    open_ = [district_incident(index, "snow-removal", "yellow", warnings={"W1": None})]
    decisions = match(warning("orange", msg="Update", wid="W2", refs=("W1",)), open_, index, NOW)
    assert decisions == [
        UpgradeIncident(7, "yellow", "orange", "blizzard orange warning W2 (Update)"),
        EndWarnings(7, ("W1",), "superseded by W2"),
    ]


def test_weaker_warning_attaches_and_keeps_the_level(index) -> None:
    open_ = [district_incident(index, "snow-removal", "orange", warnings={"W1": None})]
    [decision] = match(warning("blue", wid="W9"), open_, index, NOW)
    assert isinstance(decision, AttachToIncident) and "stays at orange" in decision.reason


@pytest.mark.parametrize(
    ("event", "expected_reason"),
    [
        (warning("blue", event="gale"), "below its yellow minimum"),
        (warning("red", event="cold_wave"), "no playbook acts on cold_wave"),
    ],
)
def test_warnings_nobody_acts_on(index, event, expected_reason) -> None:
    decisions = match(event, [], index, NOW)
    assert all(isinstance(d, Ignored) for d in decisions)
    assert any(expected_reason in d.reason for d in decisions)


def test_playbook_limited_to_districts_acts_only_there(index) -> None:
    limited = index.playbooks["road-icing"].model_copy(update={"districts": ("wuyang",)})
    only_wuyang = PlaybookIndex([limited])
    assert isinstance(match(warning("red", event="road_icing"), [], only_wuyang, NOW)[0], Ignored)
    [opened] = match(
        warning("red", event="road_icing", districts=("wuyang", "yuanhui")), [], only_wuyang, NOW
    )
    assert isinstance(opened, OpenIncident) and opened.district == "wuyang"


def test_rainstorm_orange_starts_flood_and_manhole_playbooks(index) -> None:
    decisions = match(warning("orange", event="rainstorm"), [], index, NOW)
    assert sorted((d.playbook.id, d.level) for d in decisions) == [
        ("flood-drainage", "orange"),
        ("manhole-cover", "orange"),
    ]


def test_cancel_resolves_when_nothing_else_drives_the_incident(index) -> None:
    open_ = [district_incident(index, "snow-removal", "orange", warnings={"W2": None})]
    decisions = match(warning("orange", msg="Cancel", wid="W3", refs=("W2",)), open_, index, NOW)
    assert decisions == [
        EndWarnings(7, ("W2",), "warning W3 cancelled"),
        ResolveIncident(7, "warning W3 cancelled"),
    ]


@pytest.mark.parametrize(
    "other",
    [{"warnings": {"W2": None, "W5": None}}, {"warnings": {"W2": None}, "thresholds": True}],
)
def test_cancel_keeps_incident_while_another_source_is_active(index, other) -> None:
    open_ = [district_incident(index, "snow-removal", "orange", **other)]
    decisions = match(warning("orange", msg="Cancel", wid="W3", refs=("W2",)), open_, index, NOW)
    assert decisions == [EndWarnings(7, ("W2",), "warning W3 cancelled")]


def test_road_icing_does_not_resolve_on_threshold_but_on_cancel(index) -> None:
    open_ = [district_incident(index, "road-icing", "yellow", warnings={"I1": None})]
    assert match(warning("yellow", event="road_icing", msg="Cancel", wid="I1"), open_, index, NOW)[
        -1
    ] == ResolveIncident(7, "warning I1 cancelled")


def test_update_that_drops_a_district_ends_it_there(index) -> None:
    open_ = [
        district_incident(index, "snow-removal", "yellow", warnings={"W1": None}),
        district_incident(
            index, "snow-removal", "yellow", iid=8, district="yancheng", warnings={"W1": None}
        ),
    ]
    decisions = match(warning("yellow", msg="Update", wid="W2", refs=("W1",)), open_, index, NOW)
    assert EndWarnings(7, ("W1",), "superseded by W2") in decisions
    assert ResolveIncident(8, "warning W2 no longer covers yancheng") in decisions


def test_expiry_on_the_clock(index) -> None:
    open_ = [
        district_incident(
            index, "flood-drainage", "yellow", warnings={"R1": NOW + timedelta(hours=1)}
        )
    ]
    assert match(ClockTick(NOW + timedelta(minutes=59)), open_, index, NOW) == []
    later = NOW + timedelta(hours=1)
    assert match(ClockTick(later), open_, index, later) == [
        EndWarnings(7, ("R1",), "warning R1 expired"),
        ResolveIncident(7, "warning R1 expired"),
    ]


# ---- thresholds -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("metric", "window", "value", "expected"),
    [
        ("snowfall_mm", 12, 3.9, []),
        ("snowfall_mm", 12, 4.0, [("snow-removal", "blue")]),
        ("snowfall_mm", 12, 7.5, [("snow-removal", "yellow")]),  # the higher of two reached
        ("snowfall_mm", 6, 15.0, [("snow-removal", "red")]),
        ("precipitation_mm", 3, 60, [("flood-drainage", "orange")]),
        ("precipitation_mm", 3, 100, [("flood-drainage", "red")]),
        ("wind_gust_ms", 12, 20.8, [("fallen-trees", "yellow")]),
        ("wind_gust_ms", 6, 30.0, [("fallen-trees", "orange")]),
        ("temperature_drop_c", 24, 20, []),  # nobody watches it
    ],
)
def test_threshold_table(index, metric, window, value, expected) -> None:
    decisions = match(threshold(metric, window, value), [], index, NOW)
    assert [(d.playbook.id, d.level) for d in decisions if isinstance(d, OpenIncident)] == expected


def test_threshold_cleared_resolves_only_without_warnings(index) -> None:
    cleared = threshold("snowfall_mm", 12, 1.0, cleared=True)
    alone = [district_incident(index, "snow-removal", "blue", thresholds=True)]
    assert isinstance(match(cleared, alone, index, NOW)[0], ResolveIncident)
    with_warning = [
        district_incident(index, "snow-removal", "blue", thresholds=True, warnings={"W1": None})
    ]
    assert isinstance(match(cleared, with_warning, index, NOW)[0], AttachToIncident)


# ---- reports --------------------------------------------------------------------


def test_same_tree_30m_away_attaches(index) -> None:
    [decision] = match(
        report("fallen_tree", lat=33.57147), [site_incident(index, "fallen-trees")], index, NOW
    )
    assert isinstance(decision, AttachToIncident) and decision.incident_id == 3
    assert 25 < decision.distance_m < 35


@pytest.mark.parametrize(
    ("case", "event"),
    [
        ("too far", report("fallen_tree", lat=33.5730)),
        ("other category", report("streetlight")),
        ("outside the window", report("fallen_tree", minutes=121)),
        ("no coordinates", ReportReceived(2, "fallen_tree", None, None, NOW)),
    ],
)
def test_report_does_not_attach(index, case, event) -> None:
    [decision] = match(event, [site_incident(index, "fallen-trees")], index, NOW)
    assert not isinstance(decision, AttachToIncident), case


def test_flooded_underpass_2km_away_is_another_incident(index) -> None:
    open_ = [site_incident(index, "flood-drainage")]
    [near] = match(report("waterlogging", lat=33.5730), open_, index, NOW)
    [far] = match(report("waterlogging", lat=33.5892), open_, index, NOW)
    assert isinstance(near, AttachToIncident)
    assert isinstance(far, OpenIncident)


def test_unknown_category_has_no_playbook(index) -> None:
    [decision] = match(report("ufo_landing"), [], index, NOW)
    assert decision == Ignored("no playbook handles reports of category 'ufo_landing'")


def test_index_lookups_do_not_scan_unrelated_playbooks(index) -> None:
    assert [h.playbook.id for h in index.warning_hits("rainstorm")] == [
        "flood-drainage",
        "manhole-cover",
    ]
    assert index.threshold_hits("snowfall_mm", 48) == []
    assert index.for_report("manhole").id == "manhole-cover"

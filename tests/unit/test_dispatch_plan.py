"""Dispatch planning as a table: an incident's dispatch state in, a plan out. No
database: the same function the dispatch agent, the escalation timers and the
console all reach through `dispatch_for_level`."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from pingan.core.dispatch import (
    HOLD_REASON,
    AssignmentView,
    DispatchState,
    IncidentView,
    Occasion,
    WarningInForce,
    escalation_steps,
    plan_dispatch,
)
from pingan.crews import Crew, Override
from tests.conftest import NOW

CITY = frozenset({"源汇区", "郾城区", "召陵区"})


def crew(cid: str, km_north: float, unit: str = "u1", **kw: object) -> Crew:
    return Crew(
        id=cid,
        name=cid,
        leader="",
        phone="+8613800000000",
        skills=("tree",),
        unit=unit,
        home_lat=33.58 + km_north / 111,
        home_lon=114.02,
        capacity=1,
        equipment=("chainsaw", "crane"),
        **kw,  # type: ignore[arg-type]
    )


NEAR, FAR, OWNER = crew("near", 0.5), crew("far", 5), crew("owner", 8, "u2", segments=("s9",))


def incident(level: str = "routine", **kw: object) -> IncidentView:
    base = IncidentView(
        id=7, level=level, status="open", held=False, unstaffed=False, lat=33.58, lon=114.02
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def state(index, inc: IncidentView, crews=(NEAR, FAR), **kw: object) -> DispatchState:
    return DispatchState(
        incident=inc,
        playbook=index.for_report("fallen_tree"),
        crews=tuple(crews),
        city_districts=CITY,
        **kw,  # type: ignore[arg-type]
    )


def red_gale(districts=CITY) -> WarningInForce:
    return WarningInForce("gale", "red", frozenset(districts))


@pytest.mark.parametrize(
    ("name", "inc", "extra", "occasion", "sent", "short", "alert_unit"),
    [
        ("routine: the nearest tree crew", incident(), {}, Occasion.NEED, ["near"], [], None),
        (
            "the segment owner before a nearer crew",
            incident(segment="s9"),
            {"crews": (NEAR, OWNER)},
            Occasion.NEED,
            ["owner"],
            [],
            None,
        ),
        (
            "busy crews are passed over",
            incident(),
            {"active_load": {"near": 1}},
            Occasion.NEED,
            ["far"],
            [],
            None,
        ),
        (
            "fairness: among equals, fewer tasks in 24 h",
            incident(),
            {"crews": (crew("a", 1), crew("b", 1)), "recent": {"a": 3}},
            Occasion.NEED,
            ["b"],
            [],
            None,
        ),
        (
            "off shift is passed over",
            incident(),
            {
                "crews": (
                    crew("near", 0.5, overrides=(Override(NOW, NOW + timedelta(hours=1), False),)),
                    FAR,
                )
            },
            Occasion.NEED,
            ["far"],
            [],
            None,
        ),
        (
            "upgrade to orange: only the difference (2 wanted, 1 there)",
            incident("orange", assignments=(AssignmentView("near", "tree", "acknowledged"),)),
            {"crews": (NEAR, FAR, crew("third", 9))},
            Occasion.NEED,
            ["far"],
            [],
            None,
        ),
        (
            "a crew that declined is not asked again",
            incident(assignments=(AssignmentView("near", "tree", "declined"),)),
            {},
            Occasion.NEED,
            ["far"],
            [],
            None,
        ),
        (
            "finished work counts: nothing more to send",
            incident(assignments=(AssignmentView("near", "tree", "done"),)),
            {},
            Occasion.NEED,
            [],
            [],
            None,
        ),
        (
            "reopened: finished work no longer counts, its crew may go again",
            incident(assignments=(AssignmentView("near", "tree", "done"),)),
            {},
            Occasion.REOPENED,
            ["near"],
            [],
            None,
        ),
        (
            "nobody free: short, the segment owner's supervisor is told",
            incident("orange", segment="s9"),
            {"crews": (OWNER,), "active_load": {"owner": 1}},
            Occasion.NEED,
            [],
            ["2 x tree"],
            "u2",
        ),
        (
            "some but not all: those sent, the rest reported short",
            incident("red"),
            {},
            Occasion.NEED,
            ["near", "far"],
            ["1 x tree"],
            "",
        ),
        (
            "a restaff that still finds nobody stays quiet",
            incident(unstaffed=True),
            {"active_load": {"near": 1, "far": 1}},
            Occasion.RESTAFF,
            [],
            ["1 x tree"],
            None,
        ),
        (
            "a restaff that finds a crew: staffed",
            incident(unstaffed=True),
            {"active_load": {"near": 1}},
            Occasion.RESTAFF,
            ["far"],
            [],
            None,
        ),
    ],
)
def test_plan(index, name, inc, extra, occasion, sent, short, alert_unit) -> None:
    plan = plan_dispatch(state(index, inc, **extra), NOW, occasion)
    assert plan.act and plan.hold is None, name
    assert plan.crews == sent, name
    assert list(plan.short) == short, name
    assert plan.unstaffed == bool(short), name
    assert (plan.supervisor_alert.unit if plan.supervisor_alert else None) == alert_unit, name
    if plan.supervisor_alert:
        assert plan.supervisor_alert.text.startswith("事件7无可派班组（缺")
    for batch in plan.batches:
        for assign in batch.assigns:
            assert assign.ack_due_at > NOW and assign.skill == "tree"
            assert assign.why  # the dispatcher sees why each crew was chosen


@pytest.mark.parametrize(
    ("name", "inc", "warnings", "occasion", "expect"),
    [
        ("resolved: nothing", incident(status="resolved"), (), Occasion.NEED, "nothing"),
        ("held: nothing until released", incident(held=True), (), Occasion.NEED, "nothing"),
        ("held and released: sent", incident(held=True), (), Occasion.RELEASE, "release"),
        ("citywide red gale: routine waits", incident(), (red_gale(),), Occasion.NEED, "hold"),
        (
            "red gale in one district only: routine goes",
            incident(),
            (red_gale({"源汇区"}),),
            Occasion.NEED,
            "send",
        ),
        (
            "red of another event: routine goes",
            incident(),
            (WarningInForce("blizzard", "red", CITY),),
            Occasion.NEED,
            "send",
        ),
        (
            "red response itself is never held",
            incident("red"),
            (red_gale(),),
            Occasion.NEED,
            "send",
        ),
        (
            "a dispatcher's release beats the hold",
            incident(held=True),
            (red_gale(),),
            Occasion.RELEASE,
            "release",
        ),
    ],
)
def test_hold_and_release(index, name, inc, warnings, occasion, expect) -> None:
    plan = plan_dispatch(state(index, inc, warnings=warnings), NOW, occasion)
    got = (
        "nothing"
        if not plan.act
        else "hold"
        if plan.hold
        else "release"
        if plan.release
        else "send"
    )
    assert got == expect, name
    if expect == "hold":
        assert plan.hold == HOLD_REASON and plan.crews == []
    if expect in ("release", "send"):
        assert plan.crews, name


@pytest.mark.parametrize(
    ("level", "steps"),
    [
        ("routine", ((10.0, ("next_crew", "supervisor")), (20.0, ("duty_leader",)))),
        ("yellow", ((15.0, ("next_crew", "supervisor")),)),  # none written: the ack deadline
        ("red", ((5.0, ("next_crew", "supervisor")),)),
    ],
)
def test_escalation_steps(index, level: str, steps) -> None:
    assert escalation_steps(index.for_report("fallen_tree"), level, "tree") == steps
    plan = plan_dispatch(state(index, incident(level)), NOW)
    assert all(batch.escalation == steps for batch in plan.batches)

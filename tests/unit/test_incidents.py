from datetime import timedelta

import pytest

from pingan.incidents import (
    AttachTo,
    NoPlaybook,
    OpenIncident,
    OpenNew,
    ReportFacts,
    decide_for_report,
    status_after_crew_change,
)
from tests.conftest import NOW


def report(lat=33.5712, lon=114.0153, category="fallen_tree", minutes_later=0) -> ReportFacts:
    return ReportFacts(99, category, lat, lon, NOW + timedelta(minutes=minutes_later))


def open_incident(iid=1, lat=33.5712, lon=114.0153, category="fallen_tree") -> OpenIncident:
    return OpenIncident(
        iid, category, lat, lon, NOW, correlation_radius_m=50, correlation_window_min=120
    )


def test_same_tree_30m_away_attaches(index) -> None:
    decision = decide_for_report(report(lat=33.57147), [open_incident()], index)
    assert isinstance(decision, AttachTo) and decision.incident_id == 1
    assert 25 < decision.distance_m < 35


def test_nearest_of_two_candidates_wins(index) -> None:
    incidents = [open_incident(1, lat=33.57155), open_incident(2, lat=33.57125)]
    decision = decide_for_report(report(), incidents, index)
    assert decision == AttachTo(2, pytest.approx(5.6, abs=0.5))


@pytest.mark.parametrize(
    ("case", "new_report"),
    [
        ("too far", report(lat=33.5730)),
        ("other category", report(category="streetlight_other")),
        ("outside the window", report(minutes_later=121)),
        ("no coordinates", report(lat=None, lon=None)),
    ],
)
def test_does_not_attach(case, new_report, index) -> None:
    decision = decide_for_report(new_report, [open_incident()], index)
    assert not isinstance(decision, AttachTo), case


def test_new_incident_uses_the_matching_playbook(index) -> None:
    decision = decide_for_report(report(lat=33.60), [open_incident()], index)
    assert isinstance(decision, OpenNew)
    assert decision.playbook.id == "fallen-trees" and decision.level == "routine"


def test_unknown_category_has_no_playbook(index) -> None:
    decision = decide_for_report(report(category="ufo_landing"), [], index)
    assert isinstance(decision, NoPlaybook) and "ufo_landing" in decision.reason


@pytest.mark.parametrize(
    ("states", "status"),
    [
        ([], "open"),
        (["assigned"], "dispatched"),
        (["assigned", "acknowledged"], "in_progress"),
        (["done", "assigned"], "in_progress"),
        (["done", "done"], "resolved"),
        (["done", "cancelled"], "resolved"),
        (["cancelled"], "open"),
    ],
)
def test_status_follows_assignments(states, status) -> None:
    assert status_after_crew_change(states) == status

"""Incidents: which incident a report belongs to, and when an incident is over. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from pingan.geo import distance_m
from playbooks.matcher import PlaybookIndex
from playbooks.model import Playbook


class IncidentStatus(StrEnum):
    OPEN = "open"  # known, no crew yet
    DISPATCHED = "dispatched"  # crews assigned, none acknowledged
    IN_PROGRESS = "in_progress"  # at least one crew acknowledged
    RESOLVED = "resolved"


@dataclass(frozen=True)
class ReportFacts:
    id: int
    category: str
    lat: float | None
    lon: float | None
    received_at: datetime


@dataclass(frozen=True)
class OpenIncident:
    id: int
    category: str
    lat: float | None
    lon: float | None
    last_report_at: datetime
    correlation_radius_m: float
    correlation_window_min: float


@dataclass(frozen=True)
class OpenNew:
    playbook: Playbook
    level: str


@dataclass(frozen=True)
class AttachTo:
    incident_id: int
    distance_m: float


@dataclass(frozen=True)
class NoPlaybook:
    reason: str


ReportDecision = OpenNew | AttachTo | NoPlaybook


def decide_for_report(
    report: ReportFacts, open_incidents: Sequence[OpenIncident], index: PlaybookIndex
) -> ReportDecision:
    """Attach to the nearest open incident of the same category within its correlation
    radius and window; otherwise open a new one under the matching playbook."""
    best: AttachTo | None = None
    if report.lat is not None and report.lon is not None:
        for inc in open_incidents:
            if inc.category != report.category or inc.lat is None or inc.lon is None:
                continue
            if report.received_at - inc.last_report_at > timedelta(
                minutes=inc.correlation_window_min
            ):
                continue
            dist = distance_m(report.lat, report.lon, inc.lat, inc.lon)
            if dist <= inc.correlation_radius_m and (best is None or dist < best.distance_m):
                best = AttachTo(inc.id, dist)
    if best:
        return best
    match = index.for_report(report.category)
    if match is None:
        return NoPlaybook(f"no playbook handles reports of category {report.category!r}")
    return OpenNew(match.playbook, match.trigger.level)


def status_after_crew_change(assignment_states: Sequence[str]) -> IncidentStatus:
    """An incident's status follows its live assignments. Cancelled ones do not count."""
    live = [s for s in assignment_states if s != "cancelled"]
    if live and all(s == "done" for s in live):
        return IncidentStatus.RESOLVED
    if any(s in ("acknowledged", "done") for s in live):
        return IncidentStatus.IN_PROGRESS
    if live:
        return IncidentStatus.DISPATCHED
    return IncidentStatus.OPEN

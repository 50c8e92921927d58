"""Incidents: their statuses, and when the crews' progress ends one. Pure."""

from __future__ import annotations

from collections.abc import Sequence

from pingan.core.assignments import WORKING
from pingan.vocabulary import AssignmentState, IncidentStatus

# Assignments that no longer count for an incident.
ENDED = frozenset({AssignmentState.CANCELLED, AssignmentState.DECLINED, AssignmentState.TIMED_OUT})


def status_after_crew_change(
    assignment_states: Sequence[str], sources_active: bool = False
) -> IncidentStatus:
    """An incident's status follows its live assignments (cancelled, declined and
    timed-out ones do not count). While a warning or threshold still drives it,
    finished tasks do not end it."""
    live = [s for s in assignment_states if s not in ENDED]
    if sources_matter(assignment_states):
        return IncidentStatus.IN_PROGRESS if sources_active else IncidentStatus.RESOLVED
    if any(s in WORKING for s in live):
        return IncidentStatus.IN_PROGRESS  # a crew is working on it now
    if any(s == AssignmentState.ASSIGNED for s in live):
        return IncidentStatus.DISPATCHED  # waiting for a crew to answer
    if live:
        return IncidentStatus.IN_PROGRESS
    return IncidentStatus.OPEN


def sources_matter(assignment_states: Sequence[str]) -> bool:
    """Whether a warning or threshold in force can change the status: only once every
    live task is done (so the shell need not look them up otherwise)."""
    live = [s for s in assignment_states if s not in ENDED]
    return bool(live) and all(s == AssignmentState.DONE for s in live)

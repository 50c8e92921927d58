"""The life of an assignment: which moves a crew (or a dispatcher) may make. Pure."""

from __future__ import annotations

from enum import StrEnum


class AssignmentState(StrEnum):
    ASSIGNED = "assigned"
    ACKNOWLEDGED = "acknowledged"
    DONE = "done"
    CANCELLED = "cancelled"


class CrewAction(StrEnum):
    ACK = "ack"
    DONE = "done"


ACTIVE_STATES = frozenset({AssignmentState.ASSIGNED, AssignmentState.ACKNOWLEDGED})

_MOVES: dict[tuple[AssignmentState, CrewAction], AssignmentState] = {
    (AssignmentState.ASSIGNED, CrewAction.ACK): AssignmentState.ACKNOWLEDGED,
    (AssignmentState.ACKNOWLEDGED, CrewAction.DONE): AssignmentState.DONE,
}


class TransitionRefused(ValueError):
    """The move is not allowed from the current state; the message says why."""


def next_state(current: str, action: str) -> AssignmentState:
    state, act = AssignmentState(current), CrewAction(action)
    if (state, act) in _MOVES:
        return _MOVES[(state, act)]
    if act is CrewAction.DONE and state is AssignmentState.ASSIGNED:
        raise TransitionRefused("cannot mark done before the assignment is acknowledged")
    if act is CrewAction.ACK and state is AssignmentState.ACKNOWLEDGED:
        raise TransitionRefused("already acknowledged")
    raise TransitionRefused(f"assignment is {state.value}; '{act.value}' is no longer possible")

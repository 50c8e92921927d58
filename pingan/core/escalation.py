"""What a deadline means when it comes. Pure: the task's assignment states in, the
decision out. The caller schedules and carries it out (pingan/timers in streams)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pingan.core.assignments import WORKING
from pingan.vocabulary import AssignmentState


@dataclass(frozen=True)
class EscalationDecision:
    time_out: tuple[int, ...] = ()  # assignments to mark timed out
    replace: bool = False  # ask the next crew
    tell: tuple[str, ...] = ()  # roles to alert: supervisor, duty_leader
    reason: str = ""
    stop: bool = False  # somebody acknowledged: nothing to do


def escalation_step(
    notify: Sequence[str], task: Sequence[tuple[int, str]], minutes: float
) -> EscalationDecision:
    """`task`: (assignment id, state) of the crews sent for one task of an incident."""
    answered = [a for a, s in task if s in WORKING or s == AssignmentState.DONE]
    if answered:
        return EscalationDecision(stop=True, reason=f"assignment {answered[0]} acknowledged")
    silent = tuple(a for a, s in task if s == AssignmentState.ASSIGNED)
    replace = "next_crew" in notify
    return EscalationDecision(
        time_out=silent if replace else (),
        replace=replace,
        tell=tuple(r for r in notify if r != "next_crew"),
        reason=f"no acknowledgement {minutes:g} min after dispatch",
    )


def arrival_check(state: str, late: bool) -> str | None:
    """At the arrival deadline a crew still on its way gets one reminder; if it is
    still not there a little later, its supervisor is told."""
    if state not in (AssignmentState.ACKNOWLEDGED, AssignmentState.EN_ROUTE):
        return None
    return "supervisor" if late else "remind"

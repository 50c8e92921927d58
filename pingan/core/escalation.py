"""What a deadline means when it comes. Pure: the task's assignment states in, the
decision out. The caller schedules and carries it out (pingan/timers in streams)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pingan.core.assignments import WORKING
from pingan.vocabulary import AssignmentState

# A silent crew leader who is called gets this long to press 1 (or 2) before the step
# the call put off is carried out: a call rings for up to 30 s and reads the task twice.
CALL_ANSWER_MIN = 3.0


@dataclass(frozen=True)
class EscalationDecision:
    time_out: tuple[int, ...] = ()  # assignments to mark timed out
    replace: bool = False  # ask the next crew
    tell: tuple[str, ...] = ()  # roles to alert: supervisor, duty_leader
    reason: str = ""
    stop: bool = False  # somebody acknowledged: nothing to do
    call: tuple[int, ...] = ()  # phone these silent crews' leaders first ...
    wait_min: float = 0.0  # ... and take this step again this much later


def escalation_step(
    notify: Sequence[str], task: Sequence[tuple[int, str]], minutes: float, call: bool = False
) -> EscalationDecision:
    """`task`: (assignment id, state) of the crews sent for one task of an incident.
    `call`: this step may phone the silent crews' leaders (voice is on and this is the
    step a call belongs to); then the call is all it does now, and the step comes again
    after CALL_ANSWER_MIN, when a leader who pressed 1 stops it."""
    answered = [a for a, s in task if s in WORKING or s == AssignmentState.DONE]
    if answered:
        return EscalationDecision(stop=True, reason=f"assignment {answered[0]} acknowledged")
    silent = tuple(a for a, s in task if s == AssignmentState.ASSIGNED)
    if call and silent:
        return EscalationDecision(
            call=silent,
            wait_min=CALL_ANSWER_MIN,
            reason=f"no acknowledgement {minutes:g} min after dispatch: calling the crew leader",
        )
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

"""Dispatch planning: which crews an incident still needs at its level, whom the
assignment policy sends, and what follows (escalation timers, an unstaffed alert to
the supervisor, a hold while a citywide red warning needs every crew). Pure: the
shell (pingan/dispatch/staffing.py `dispatch_for_level`) loads a `DispatchState`, calls
`plan_dispatch` and writes the `DispatchPlan`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from pingan.core.assignments import ACTIVE_STATES, LIVE_STATES
from pingan.crews import Crew, CrewChoice, CrewReason, choose_crews
from pingan.vocabulary import AssignmentState, IncidentStatus
from playbooks.model import DispatchAction, Playbook, WarningTrigger

HOLD_REASON = "citywide red warning in force; routine work waits"
DEFAULT_ACK_MIN = 10.0


class Occasion(StrEnum):
    """Why dispatch is asked."""

    NEED = "need"  # opened, level raised, a crew declined or timed out
    REOPENED = "reopened"  # finished work no longer counts; its crews may go again
    RESTAFF = "restaff"  # a retry for an unstaffed incident (supervisor already told)
    RELEASE = "release"  # a dispatcher released a held incident


@dataclass(frozen=True)
class AssignmentView:
    crew_id: str
    skill: str
    state: str


@dataclass(frozen=True)
class IncidentView:
    id: int
    level: str
    status: str
    held: bool
    unstaffed: bool
    lat: float | None
    lon: float | None
    segment: str | None = None  # the road segment of its first placed report
    assignments: tuple[AssignmentView, ...] = ()


@dataclass(frozen=True)
class WarningInForce:
    event: str
    level: str
    districts: frozenset[str]


@dataclass(frozen=True)
class DispatchState:
    """Everything dispatch reads, loaded by the shell in one go."""

    incident: IncidentView
    playbook: Playbook
    crews: tuple[Crew, ...]
    active_load: Mapping[str, int] = field(default_factory=dict)  # crew -> active tasks
    recent: Mapping[str, int] = field(default_factory=dict)  # crew -> tasks in 24 h
    warnings: tuple[WarningInForce, ...] = ()
    city_districts: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Assign:
    crew: Crew
    reason: CrewReason
    skill: str
    ack_due_at: datetime

    @property
    def why(self) -> str:
        return self.reason.text


@dataclass(frozen=True)
class Batch:
    """The crews sent for one dispatch action, and the escalation that watches them
    (timers keyed by the first new assignment)."""

    skill: str
    assigns: tuple[Assign, ...]
    escalation: tuple[tuple[float, tuple[str, ...]], ...]


@dataclass(frozen=True)
class SupervisorAlert:
    unit: str  # the segment owner's unit ("" when unknown: the duty leader hears)
    text: str


@dataclass(frozen=True)
class DispatchPlan:
    act: bool = True  # False: resolved, or held and not released: nothing changes
    release: bool = False  # clear the hold
    hold: str | None = None  # hold now, for this reason, and send nobody
    batches: tuple[Batch, ...] = ()
    short: tuple[str, ...] = ()  # "2 x tree": what the policy could not find
    supervisor_alert: SupervisorAlert | None = None

    @property
    def unstaffed(self) -> bool:
        return bool(self.short)

    @property
    def crews(self) -> list[str]:
        return [a.crew.id for b in self.batches for a in b.assigns]


NOTHING = DispatchPlan(act=False)


def escalation_steps(
    playbook: Playbook, level: str, skill: str
) -> tuple[tuple[float, tuple[str, ...]], ...]:
    """The escalation steps for a task: the level's own, or by default the crew's
    acknowledgement deadline with the next crew and the supervisor."""
    actions = playbook.actions_at(level)
    if actions.escalation:
        return tuple((s.after_min, tuple(s.notify)) for s in actions.escalation)
    action = playbook.dispatch_for(level, skill)
    deadline = action.ack_within_min if action else DEFAULT_ACK_MIN
    return ((deadline, ("next_crew", "supervisor")),)


def inhibited(state: DispatchState) -> bool:
    """Routine work waits while a citywide red warning this playbook acts on is in
    force: the crews are needed for the red response."""
    if state.incident.level != "routine":
        return False
    events = {t.event for t in state.playbook.triggers if isinstance(t, WarningTrigger)}
    return any(
        w.level == "red" and w.event in events and state.city_districts <= w.districts
        for w in state.warnings
    )


def staffing_choices(
    state: DispatchState, now: datetime, occasion: Occasion = Occasion.NEED
) -> list[tuple[DispatchAction, int, list[CrewChoice]]]:
    """For each dispatch action of the level that lacks crews: how many are wanted
    and whom the policy would send now (possibly fewer, possibly nobody). A crew
    that declined or timed out is not asked again."""
    incident = state.incident
    mine = incident.assignments
    counted = LIVE_STATES
    if occasion is Occasion.REOPENED:
        mine = tuple(
            a for a in mine if a.state not in (AssignmentState.DONE, AssignmentState.CANCELLED)
        )
        counted = ACTIVE_STATES
    on_incident = frozenset(a.crew_id for a in mine)
    load = dict(state.active_load)
    out = []
    for action in state.playbook.actions_at(incident.level).dispatch:
        have = sum(1 for a in mine if a.skill == action.skill and a.state in counted)
        wanted = action.crews - have
        if wanted <= 0:
            continue
        choices = choose_crews(
            action.skill,
            wanted,
            incident.lat,
            incident.lon,
            state.crews,
            load,
            on_incident,
            action.equipment,
            incident.segment,
            now,
            state.recent,
        )
        for choice in choices:  # a crew chosen for one action is busier for the next
            load[choice.crew.id] = load.get(choice.crew.id, 0) + 1
            on_incident |= {choice.crew.id}
        out.append((action, wanted, choices))
    return out


def dispatch_applies(status: str, held: bool, occasion: Occasion) -> bool:
    """Whether dispatch has anything to decide: not for a resolved incident, nor for a
    held one unless a dispatcher releases it. The shell asks first to skip loading."""
    return status != IncidentStatus.RESOLVED and (not held or occasion is Occasion.RELEASE)


def plan_dispatch(
    state: DispatchState, now: datetime, occasion: Occasion = Occasion.NEED
) -> DispatchPlan:
    """Assign crews until the incident has what its current level asks for: on an
    upgrade, a decline or a timeout only the difference, never a second full
    response."""
    incident = state.incident
    released = occasion is Occasion.RELEASE
    if not dispatch_applies(incident.status, incident.held, occasion):
        return NOTHING
    if not released and inhibited(state):
        return DispatchPlan(hold=HOLD_REASON)
    batches = []
    short = []
    for action, wanted, choices in staffing_choices(state, now, occasion):
        if choices:
            due = now + timedelta(minutes=action.ack_within_min)
            batches.append(
                Batch(
                    action.skill,
                    tuple(Assign(c.crew, c.reason, action.skill, due) for c in choices),
                    escalation_steps(state.playbook, incident.level, action.skill),
                )
            )
        if len(choices) < wanted:
            short.append(f"{wanted - len(choices)} x {action.skill}")
    alert = None
    # A retry that still finds nobody was already reported; anything else is news.
    if short and not (occasion is Occasion.RESTAFF and incident.unstaffed and not batches):
        owner_unit = next(
            (c.unit for c in state.crews if incident.segment and incident.segment in c.segments),
            "",
        )
        alert = SupervisorAlert(
            owner_unit, f"事件{incident.id}无可派班组（缺{'、'.join(short)}），请协调"
        )
    return DispatchPlan(
        release=released, batches=tuple(batches), short=tuple(short), supervisor_alert=alert
    )

"""The life of an assignment: which moves a crew (or a dispatcher on its behalf) may
make, and what the clock does. Pure.

    assigned -> acknowledged -> en_route -> on_scene -> done
    assigned -> declined | timed_out (the next crew is asked) | cancelled
"""

from __future__ import annotations

from enum import StrEnum

from pingan.vocabulary import CREW_ACTIONS, AssignmentState, status_label


class CrewAction(StrEnum):
    ACK = "ack"
    DECLINE = "decline"
    EN_ROUTE = "en_route"
    ON_SCENE = "on_scene"
    DONE = "done"


# Crews holding these count against their capacity.
ACTIVE_STATES = frozenset(
    {
        AssignmentState.ASSIGNED,
        AssignmentState.ACKNOWLEDGED,
        AssignmentState.EN_ROUTE,
        AssignmentState.ON_SCENE,
    }
)
# Assignments that still count towards what an incident's level asks for.
LIVE_STATES = frozenset({*ACTIVE_STATES, AssignmentState.DONE})
WORKING = frozenset(
    {AssignmentState.ACKNOWLEDGED, AssignmentState.EN_ROUTE, AssignmentState.ON_SCENE}
)
# A dispatcher may take a task from a crew and give it to the next one until the crew
# is on scene.
REASSIGNABLE = frozenset(
    {AssignmentState.ASSIGNED, AssignmentState.ACKNOWLEDGED, AssignmentState.EN_ROUTE}
)

MOVES: dict[CrewAction, tuple[frozenset[AssignmentState], AssignmentState]] = {
    CrewAction.ACK: (frozenset({AssignmentState.ASSIGNED}), AssignmentState.ACKNOWLEDGED),
    CrewAction.DECLINE: (frozenset({AssignmentState.ASSIGNED}), AssignmentState.DECLINED),
    CrewAction.EN_ROUTE: (frozenset({AssignmentState.ACKNOWLEDGED}), AssignmentState.EN_ROUTE),
    CrewAction.ON_SCENE: (
        frozenset({AssignmentState.ACKNOWLEDGED, AssignmentState.EN_ROUTE}),
        AssignmentState.ON_SCENE,
    ),
    CrewAction.DONE: (WORKING, AssignmentState.DONE),
}


# A digit a crew answers with, by SMS ("12 1") or on the keypad of a call.
REPLY_DIGITS: dict[str, CrewAction] = {
    "1": CrewAction.ACK,
    "2": CrewAction.DECLINE,
    "3": CrewAction.ON_SCENE,
    "9": CrewAction.DONE,
}
# A call asks only whether the crew takes the task.
CALL_ANSWERS = frozenset({CrewAction.ACK, CrewAction.DECLINE})


def call_answer(digits: str) -> CrewAction | None:
    """What a key pressed during an escalation call means: 1 accepts, 2 declines (as in
    an SMS reply); anything else (another key, none, several) means nothing and the
    call asks again."""
    action = REPLY_DIGITS.get(digits)
    return action if action in CALL_ANSWERS else None


class TransitionRefused(ValueError):
    """The move is not allowed from the current state. The message says why in English
    (the API); `zh` says it in the words a crew leader reads on a phone."""

    def __init__(self, en: str, zh: str) -> None:
        super().__init__(en)
        self.zh = zh


def next_state(current: str, action: str) -> AssignmentState:
    state, act = AssignmentState(current), CrewAction(action)
    allowed, target = MOVES[act]
    if state in allowed:
        return target
    doing = CREW_ACTIONS[act][0]
    if state is AssignmentState.ASSIGNED:
        if act is CrewAction.DONE:
            raise TransitionRefused(
                "cannot mark done before the assignment is acknowledged", "请先接单，再标记完成。"
            )
        raise TransitionRefused(
            f"acknowledge the assignment before '{act.value}'", f"请先接单，再{doing}。"
        )
    if state in (AssignmentState.TIMED_OUT, AssignmentState.DECLINED):
        raise TransitionRefused(
            "this task has been passed to another crew; thank you, no action needed",
            "该任务已转派其他班组，感谢，无需处理。",
        )
    if state is AssignmentState.CANCELLED:
        raise TransitionRefused(
            "this task was cancelled; no action needed", "该任务已取消，无需处理。"
        )
    if act is CrewAction.ACK and state in WORKING:
        raise TransitionRefused("already acknowledged", "该任务已接单。")
    raise TransitionRefused(
        f"assignment is {state.value}; '{act.value}' is no longer possible",
        f"任务已{status_label(state)['zh']}，不能再{doing}。",
    )

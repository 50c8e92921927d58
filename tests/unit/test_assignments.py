import pytest

from pingan.core.assignments import TransitionRefused, next_state
from pingan.core.escalation import arrival_check, escalation_step

ALLOWED = [
    ("assigned", "ack", "acknowledged"),
    ("assigned", "decline", "declined"),
    ("acknowledged", "en_route", "en_route"),
    ("acknowledged", "on_scene", "on_scene"),
    ("en_route", "on_scene", "on_scene"),
    ("acknowledged", "done", "done"),
    ("on_scene", "done", "done"),
]
REFUSED = [
    ("assigned", "done", "before the assignment is acknowledged"),
    ("assigned", "on_scene", "acknowledge the assignment before 'on_scene'"),
    ("acknowledged", "ack", "already acknowledged"),
    ("acknowledged", "decline", "assignment is acknowledged; 'decline' is no longer possible"),
    ("done", "ack", "assignment is done"),
    ("done", "done", "assignment is done"),
    ("timed_out", "ack", "passed to another crew; thank you"),
    ("declined", "ack", "passed to another crew"),
    ("cancelled", "ack", "this task was cancelled"),
]


@pytest.mark.parametrize(("state", "action", "expected"), ALLOWED)
def test_allowed_moves(state: str, action: str, expected: str) -> None:
    assert next_state(state, action) == expected


@pytest.mark.parametrize(("state", "action", "reason"), REFUSED)
def test_refused_moves_say_why(state: str, action: str, reason: str) -> None:
    with pytest.raises(TransitionRefused, match=reason):
        next_state(state, action)


@pytest.mark.parametrize(("state", "action", "_"), REFUSED)
def test_every_refusal_has_words_for_a_crew_leaders_phone(state: str, action: str, _: str) -> None:
    """A refusal carries its Chinese text; the crew page and the SMS reply use it
    (they once looked the English message up in a table and fell back to English)."""
    with pytest.raises(TransitionRefused) as refused:
        next_state(state, action)
    zh = refused.value.zh
    assert zh and zh != str(refused.value)
    assert all(not ("a" <= ch.lower() <= "z") for ch in zh), zh


@pytest.mark.parametrize(
    ("notify", "task", "time_out", "replace", "tell", "stop"),
    [
        (["next_crew", "supervisor"], [(1, "assigned")], (1,), True, ("supervisor",), False),
        (["duty_leader"], [(1, "timed_out"), (2, "assigned")], (), False, ("duty_leader",), False),
        (["next_crew", "supervisor"], [(1, "acknowledged")], (), False, (), True),
        (["next_crew"], [(1, "timed_out"), (2, "on_scene")], (), False, (), True),
        (
            ["next_crew", "supervisor"],
            [(1, "declined"), (2, "assigned"), (3, "assigned")],
            (2, 3),
            True,
            ("supervisor",),
            False,
        ),
    ],
)
def test_escalation_steps(notify, task, time_out, replace, tell, stop) -> None:  # type: ignore[no-untyped-def]
    decision = escalation_step(notify, task, 10)
    assert (decision.time_out, decision.replace, decision.tell, decision.stop) == (
        time_out,
        replace,
        tell,
        stop,
    )


@pytest.mark.parametrize(
    ("state", "late", "expected"),
    [
        ("acknowledged", False, "remind"),
        ("en_route", True, "supervisor"),
        ("on_scene", False, None),
        ("done", True, None),
        ("cancelled", False, None),
    ],
)
def test_arrival(state: str, late: bool, expected: str | None) -> None:
    assert arrival_check(state, late) == expected


@pytest.mark.parametrize(
    ("states", "sources", "status"),
    [
        ([], False, "open"),
        (["assigned"], False, "dispatched"),
        (["assigned", "acknowledged"], False, "in_progress"),
        (["done", "assigned"], False, "dispatched"),  # e.g. reopened: waiting for the crew
        (["done", "on_scene"], False, "in_progress"),
        (["done", "done"], False, "resolved"),
        (["done", "timed_out", "declined"], False, "resolved"),
        (["done"], True, "in_progress"),  # the warning still drives it
        (["cancelled"], False, "open"),
    ],
)
def test_incident_status_follows_assignments(states, sources, status) -> None:  # type: ignore[no-untyped-def]
    from pingan.core.incidents import status_after_crew_change

    assert status_after_crew_change(states, sources) == status

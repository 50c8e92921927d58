import pytest

from pingan.assignments import TransitionRefused, next_state

ALLOWED = [
    ("assigned", "ack", "acknowledged"),
    ("acknowledged", "done", "done"),
]
REFUSED = [
    ("assigned", "done", "before the assignment is acknowledged"),
    ("acknowledged", "ack", "already acknowledged"),
    ("done", "ack", "assignment is done"),
    ("done", "done", "assignment is done"),
    ("cancelled", "ack", "assignment is cancelled"),
]


@pytest.mark.parametrize(("state", "action", "expected"), ALLOWED)
def test_allowed_moves(state: str, action: str, expected: str) -> None:
    assert next_state(state, action) == expected


@pytest.mark.parametrize(("state", "action", "reason"), REFUSED)
def test_refused_moves_say_why(state: str, action: str, reason: str) -> None:
    with pytest.raises(TransitionRefused, match=reason):
        next_state(state, action)

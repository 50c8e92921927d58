"""The worker's liveness rule as a table: samples in, stall (or none) out."""

from __future__ import annotations

import pytest

from streams.liveness import Sample, Watch, judge, start_watch

LIMIT = 60.0


def _sample(at: float, handled: int = 0, flow: bool = True, busy: float | None = None) -> Sample:
    return Sample(at, handled, flow, busy, "incidents" if busy is not None else "")


@pytest.mark.parametrize(
    ("name", "samples", "now", "reason"),
    [
        ("idle, nothing to do", [_sample(t) for t in range(0, 200, 5)], 200.0, None),
        (
            "busy but progressing (a backlog worked through)",
            [_sample(t, handled=t * 10, busy=t - 0.02) for t in range(1, 200)],
            200.0,
            None,
        ),
        ("a short rebalance", [_sample(0), _sample(10, flow=False), _sample(40)], 41.0, None),
        (
            "a rebalance that never ends (the faust/aiokafka deadlock)",
            [_sample(t, handled=967, flow=t < 30) for t in range(0, 100)],
            99.0,
            "rebalance-stuck",
        ),
        (
            "a handler that never returns",
            [_sample(t, handled=5, busy=10.0) for t in range(10, 80)],
            79.0,
            "handler-stuck",
        ),
        (
            "slow handler inside the limit",
            [_sample(t, busy=10.0) for t in range(10, 60)],
            65.0,
            None,
        ),
        ("the event loop stopped sampling", [_sample(0), _sample(1)], 62.0, "loop-blocked"),
        ("no sample yet", [], 500.0, None),
    ],
)
def test_judge(name: str, samples: list[Sample], now: float, reason: str | None) -> None:
    watch = start_watch(0.0)
    first = None
    for sample in samples:
        watch, stall = judge(watch, sample, sample.taken_at, LIMIT)
        first = first or stall
    watch, stall = judge(watch, samples[-1] if samples else None, now, LIMIT)
    first = first or stall
    assert (first.reason if first else None) == reason, name
    if first is not None:
        assert LIMIT < first.stuck_for_s <= LIMIT + 1.5, first


def test_flow_resuming_clears_the_rebalance_clock() -> None:
    watch = start_watch(0.0)
    watch, _ = judge(watch, _sample(0, flow=False), 0.0, LIMIT)
    watch, _ = judge(watch, _sample(50, flow=True), 50.0, LIMIT)
    watch, _ = judge(watch, _sample(55, flow=False), 55.0, LIMIT)
    assert watch == Watch(handled=0, progress_at=0.0, flow_stopped_at=55.0)
    _, stall = judge(watch, _sample(100, flow=False), 100.0, LIMIT)
    assert stall is None  # 45 s into the second rebalance, not 100 s into the first


def test_the_stall_says_why() -> None:
    _, stall = judge(start_watch(0), _sample(61, handled=3, busy=0.0), 61.0, LIMIT)
    assert stall is not None
    assert (
        stall.describe() == "handler-stuck: consumer incidents has not finished its event for 61s"
    )

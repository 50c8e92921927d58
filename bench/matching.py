"""Matching cost per event with 1,000 playbooks against 10: the index must keep
playbooks that cannot match out of the work."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from pingan.core.events import ClockTick, ReportReceived, ThresholdCrossed, WarningSignal
from pingan.core.matching import match
from pingan.settings import PROJECT_ROOT
from playbooks.index import PlaybookIndex
from playbooks.loader import load_playbooks
from playbooks.model import Playbook

NOW = datetime(2026, 1, 20, 6, 0, tzinfo=UTC)


def _synthetic(n: int) -> Playbook:
    """A playbook for a report category nobody reports: it can never match."""
    return Playbook.model_validate(
        {
            "id": f"synthetic-{n}",
            "version": 1,
            "name": {"zh": f"合成{n}", "en": f"Synthetic {n}"},
            "owner": "bench",
            "source": "generated for the benchmark",
            "triggers": [{"kind": "report", "category": f"synthetic_{n}"}],
            "correlation": {"radius_m": 50, "window_min": 60},
            "levels": {"routine": {"dispatch": [{"skill": "tree"}]}},
        }
    )


def _index(total: int) -> PlaybookIndex:
    real = list(load_playbooks(PROJECT_ROOT / "playbooks").values())
    return PlaybookIndex(real + [_synthetic(n) for n in range(total - len(real))])


def _events() -> list:
    events = []
    for i in range(50):
        at = NOW + timedelta(minutes=i)
        events += [
            ReportReceived(i, "fallen_tree", 33.57 + i * 1e-4, 114.01, at),
            ReportReceived(i, "waterlogging", 33.58, 114.02 + i * 1e-4, at),
            WarningSignal(
                f"W{i}",
                "blizzard",
                "yellow",
                "Alert",
                ("yuanhui", "yancheng"),
                at,
                at + timedelta(hours=6),
            ),
            ThresholdCrossed("precipitation_mm", 3, 60.0, "shaoling", at),
            ClockTick(at),
        ]
    return events


def _time_per_event(index: PlaybookIndex, events: list, rounds: int) -> float:
    start = time.perf_counter()
    for _ in range(rounds):
        for event in events:
            match(event, [], index, event.at)
    return (time.perf_counter() - start) / (rounds * len(events))


def match_cost_ratio() -> list[dict]:
    small, large = _index(10), _index(1000)
    events = _events()
    _time_per_event(small, events, 5)  # warm up both before measuring
    _time_per_event(large, events, 5)
    best = {10: float("inf"), 1000: float("inf")}
    for _ in range(7):  # interleaved, best of seven
        best[10] = min(best[10], _time_per_event(small, events, 40))
        best[1000] = min(best[1000], _time_per_event(large, events, 40))
    ratio = best[1000] / best[10]
    return [
        {
            "bench": "match_cost_ratio_1000_vs_10",
            "value": round(ratio, 3),
            "unit": "ratio",
            "per_event_us_10": round(best[10] * 1e6, 2),
            "per_event_us_1000": round(best[1000] * 1e6, 2),
            "target": "<= 2",
        },
    ]

"""Threshold evaluation over rolling windows per district. Pure.

For each (metric, window) some playbook watches, `window_value` takes the most extreme
window in the hours given (observed past and forecast future alike: CMA signals are
issued on "will reach" as well as "has reached"). `step` turns successive values into
crossings with hysteresis: a value must fall clearly below the lowest threshold
(HYSTERESIS below it) before the crossing is cleared, so a value hovering at the
threshold opens one incident, not a string of them. A rise into a higher threshold
while active is reported again (the matcher upgrades); a fall between thresholds is not
(responses are never downgraded automatically).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from pingan.core.events import ThresholdCrossed
from pingan.intake.feeds.open_meteo import Hour
from playbooks.index import PlaybookIndex
from playbooks.model import ThresholdTrigger

HYSTERESIS = 0.2  # relative, for amounts and speeds
TEMPERATURE_MARGIN_C = 2.0  # absolute, for temperatures
SUMMED = {"precipitation_mm", "snowfall_mm"}
FIELD = {
    "precipitation_mm": "precipitation_mm",
    "snowfall_mm": "snowfall_mm",
    "wind_gust_ms": "wind_gust_ms",
    "wind_mean_ms": "wind_mean_ms",
    "temperature_min_c": "temperature_c",
    "temperature_drop_c": "temperature_c",
}


@dataclass(frozen=True)
class Watch:
    metric: str
    window_h: int
    op: str
    values: tuple[float, ...]  # the thresholds, sorted from mildest to strongest


def watches(index: PlaybookIndex) -> list[Watch]:
    """Every (metric, window, op) some playbook watches, with its threshold values."""
    found: dict[tuple[str, int, str], set[float]] = {}
    for playbook in index.playbooks.values():
        for trigger in playbook.triggers:
            if isinstance(trigger, ThresholdTrigger):
                key = (trigger.metric, trigger.window_h, trigger.op)
                found.setdefault(key, set()).add(trigger.value)
    return [
        Watch(m, w, op, tuple(sorted(v, reverse=op == "<=")))
        for (m, w, op), v in sorted(found.items())
    ]


def window_value(
    hours: Sequence[Hour], metric: str, window_h: int, since: datetime | None = None
) -> float | None:
    """The most extreme value of `metric` over any `window_h` consecutive hours (from
    `since` on). None when no hour has data."""
    field = FIELD[metric]
    series = sorted((h for h in hours if since is None or h.at >= since), key=lambda h: h.at)
    best: float | None = None
    for i, first in enumerate(series):
        end = first.at + timedelta(hours=window_h)
        window = [getattr(h, field) for h in series[i:] if h.at < end]
        known = [v for v in window if v is not None]
        if not known:
            continue
        if metric in SUMMED:
            value = sum(known)
        elif metric == "temperature_min_c":
            value = min(known)
        elif metric == "temperature_drop_c":
            value = max(0.0, known[0] - min(known))
        else:
            value = max(known)
        if best is None or (value < best if metric == "temperature_min_c" else value > best):
            best = value
    return best


@dataclass(frozen=True)
class CrossingState:
    active: bool = False
    band: float | None = None  # the strongest threshold reached while active


def _reached(watch: Watch, value: float) -> list[float]:
    return [t for t in watch.values if (value >= t if watch.op == ">=" else value <= t)]


def _clear_below(watch: Watch, value: float) -> bool:
    mildest = watch.values[0]
    if watch.op == ">=":
        margin = (
            TEMPERATURE_MARGIN_C if watch.metric.startswith("temperature") else mildest * HYSTERESIS
        )
        return value < mildest - margin
    return value > mildest + TEMPERATURE_MARGIN_C


def step(
    watch: Watch, state: CrossingState, value: float | None, district: str, now: datetime
) -> tuple[CrossingState, ThresholdCrossed | None]:
    if value is None:
        return state, None  # no data is not "below the threshold"
    reached = _reached(watch, value)
    strongest = reached[-1] if reached else None
    crossed = ThresholdCrossed(watch.metric, watch.window_h, round(value, 2), district, now)
    if not state.active:
        if strongest is None:
            return state, None
        return CrossingState(True, strongest), crossed
    stronger = (
        strongest is not None
        and state.band is not None
        and (strongest > state.band if watch.op == ">=" else strongest < state.band)
    )
    if stronger:
        return CrossingState(True, strongest), crossed
    if _clear_below(watch, value):
        return CrossingState(), ThresholdCrossed(
            watch.metric, watch.window_h, round(value, 2), district, now, cleared=True
        )
    return state, None

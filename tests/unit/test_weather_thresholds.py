"""Open-Meteo normalisation (units, nulls, bad shapes) and threshold evaluation
(rolling windows, hysteresis) on recorded responses."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pingan.intake.feeds.cap import FeedRejected
from pingan.intake.feeds.open_meteo import SNOW_CM_TO_WATER_MM, Hour, parse_open_meteo
from pingan.intake.thresholds import CrossingState, Watch, step, watches, window_value

FEEDS = Path(__file__).parent.parent / "data" / "feeds"
NOW = datetime(2026, 1, 20, 0, 0, tzinfo=UTC)


def series(name: str):  # type: ignore[no-untyped-def]
    return parse_open_meteo((FEEDS / name).read_bytes())


def test_local_times_become_utc_and_units_are_stated() -> None:
    s = series("open-meteo-snow-rising.json")
    assert s.hours[0].at == datetime(2026, 1, 19, 16, 0, tzinfo=UTC)  # 00:00 +08:00
    assert s.units_note["snowfall_mm"] == "from snowfall in cm"
    assert s.units_note["wind_gust_ms"] == "from wind_gusts_10m in km/h"
    assert s.hours[4].snowfall_mm == pytest.approx(0.5 * SNOW_CM_TO_WATER_MM)
    assert s.hours[0].wind_gust_ms == pytest.approx(18 / 3.6)


def test_snow_water_equivalent_over_12h() -> None:
    rising = window_value(series("open-meteo-snow-rising.json").hours, "snowfall_mm", 12)
    quiet = window_value(series("open-meteo-quiet.json").hours, "snowfall_mm", 12)
    assert rising == pytest.approx((6 * 0.5 + 4 * 0.3) * 10 / 7)  # 4.2 cm -> 6.0 mm
    assert quiet == pytest.approx(5 * 0.3 * 10 / 7)
    assert quiet < 4 <= rising


def test_imperial_units_give_the_same_weather() -> None:
    metric, imperial = series("open-meteo-snow-rising.json"), series("open-meteo-imperial.json")
    for field in ("snowfall_mm", "precipitation_mm", "temperature_c", "wind_gust_ms"):
        for a, b in zip(metric.hours, imperial.hours, strict=True):
            assert getattr(b, field) == pytest.approx(getattr(a, field), abs=0.01), field


def test_nulls_are_missing_not_zero() -> None:
    s = series("open-meteo-nulls.json")
    assert s.hours[5].snowfall_mm is None and s.hours[45].temperature_c is None
    # the missing hour inside the snowfall is left out of the sum, not counted as 0 mm
    assert window_value(s.hours, "snowfall_mm", 12) == pytest.approx((5 * 0.5 + 4 * 0.3) * 10 / 7)
    assert window_value([Hour(NOW)], "snowfall_mm", 12) is None


def _doc(**changes) -> bytes:  # type: ignore[no-untyped-def]
    doc = json.loads((FEEDS / "open-meteo-quiet.json").read_bytes())
    for path, value in changes.items():
        target = doc
        *parents, last = path.split("__")
        for part in parents:
            target = target[part]
        target[last] = value
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"<html>rate limited</html>", "not valid JSON"),
        (b"[]", "expected a JSON object"),
        (b'{"error": true, "reason": "Latitude must be in range"}', "Latitude must be in range"),
        (_doc(hourly__snowfall=[0.1, 0.2]), "hourly.snowfall: expected 48 values"),
        (_doc(hourly_units__snowfall="mm"), "unit 'mm' is not one of cm, inch"),
        (_doc(hourly_units__wind_gusts_10m="beaufort"), "unit 'beaufort'"),
        (_doc(hourly__time="today"), "no 'hourly.time' array"),
        (_doc(hourly__precipitation=["heavy"] * 48), "'heavy' is not a number"),
    ],
)
def test_bad_forecasts_are_refused(data: bytes, reason: str) -> None:
    with pytest.raises(FeedRejected, match=reason):
        parse_open_meteo(data)


@pytest.mark.parametrize(
    ("metric", "values", "window", "expected"),
    [
        ("precipitation_mm", [10, 20, 30, 40, 0, 0], 3, 90),
        ("precipitation_mm", [10, 20, 30, 40, 0, 0], 1, 40),
        ("wind_gust_ms", [5, 21, 7, 3], 6, 21),
        ("temperature_min_c", [3, -1, -4, 2], 12, -4),
        ("temperature_drop_c", [12, 10, 4, 1, 6], 24, 11),
    ],
)
def test_window_table(metric: str, values: list[float], window: int, expected: float) -> None:
    field = {"temperature_min_c": "temperature_c", "temperature_drop_c": "temperature_c"}.get(
        metric, metric
    )
    hours = [Hour(NOW + timedelta(hours=i), **{field: v}) for i, v in enumerate(values)]
    assert window_value(hours, metric, window) == pytest.approx(expected)


SNOW12 = Watch("snowfall_mm", 12, ">=", (4.0, 6.0))


def _run(values: list[float | None]) -> list[tuple[str, float]]:
    state, out = CrossingState(), []
    for v in values:
        state, event = step(SNOW12, state, v, "yuanhui", NOW)
        if event:
            out.append(("cleared" if event.cleared else "crossed", event.value))
    return out


@pytest.mark.parametrize(
    ("values", "events"),
    [
        ([1, 2, 3.9], []),
        ([1, 4.2], [("crossed", 4.2)]),
        # hovering at the threshold: one crossing, no flapping
        ([4.1, 3.9, 4.05, 3.5, 4.3, 3.3], [("crossed", 4.1)]),
        # clearly below (20% under 4 mm) clears; a new rise crosses again
        ([4.5, 3.1, 4.2], [("crossed", 4.5), ("cleared", 3.1), ("crossed", 4.2)]),
        # rising into the next threshold is reported again (upgrade), falling back is not
        ([4.5, 6.5, 5.0, 7.0], [("crossed", 4.5), ("crossed", 6.5)]),
        # missing data is not "below"
        ([4.5, None, None], [("crossed", 4.5)]),
    ],
)
def test_hysteresis(values: list[float | None], events: list[tuple[str, float]]) -> None:
    assert _run(values) == events


def test_watches_come_from_the_playbooks(index) -> None:
    found = {(w.metric, w.window_h): w.values for w in watches(index)}
    assert found[("snowfall_mm", 12)] == (4.0, 6.0)
    assert found[("snowfall_mm", 6)] == (10.0, 15.0)
    assert found[("precipitation_mm", 3)] == (50.0, 100.0)
    assert found[("wind_gust_ms", 12)] == (20.8,)

"""Open-Meteo forecast JSON to hourly observations in the system's units. Pure.

Units are read from `hourly_units`, never assumed, and converted to: mm of rain, mm of
snow water equivalent, °C, m/s. Open-Meteo gives snowfall in cm of snow and documents
its water equivalent as cm / 7 * 10 mm (7 cm of snow = 10 mm of water); that ratio is
what `snowfall_mm` uses. Null values (a model run without that hour) stay None and are
left out of sums rather than read as zero.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pingan.intake.feeds.cap import MAX_BYTES, FeedRejected

SNOW_CM_TO_WATER_MM = 10 / 7
VARIABLES = {
    # Open-Meteo variable: (our field, {unit: factor to our unit} or a converter)
    "precipitation": ("precipitation_mm", {"mm": 1.0, "inch": 25.4}),
    "snowfall": ("snowfall_mm", {"cm": SNOW_CM_TO_WATER_MM, "inch": 2.54 * SNOW_CM_TO_WATER_MM}),
    "temperature_2m": ("temperature_c", {"°C": 1.0, "°F": "fahrenheit"}),
    "wind_speed_10m": (
        "wind_mean_ms",
        {"km/h": 1 / 3.6, "m/s": 1.0, "mph": 0.44704, "kn": 0.514444},
    ),
    "wind_gusts_10m": (
        "wind_gust_ms",
        {"km/h": 1 / 3.6, "m/s": 1.0, "mph": 0.44704, "kn": 0.514444},
    ),
}
FIELDS = tuple(field for field, _ in VARIABLES.values())


@dataclass(frozen=True)
class Hour:
    at: datetime  # UTC, start of the hour the values describe
    precipitation_mm: float | None = None
    snowfall_mm: float | None = None
    temperature_c: float | None = None
    wind_mean_ms: float | None = None
    wind_gust_ms: float | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            **{
                f: (round(v, 2) if v is not None else None)
                for f in FIELDS
                for v in [getattr(self, f)]
            },
        }


@dataclass(frozen=True)
class Series:
    latitude: float
    longitude: float
    hours: tuple[Hour, ...]
    units_note: dict[str, str]


def looks_like_open_meteo(data: bytes) -> bool:
    head = data.lstrip()[:1]
    return head == b"{" and b'"hourly"' in data[:MAX_BYTES]


def _convert(value: Any, rule: float | str, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FeedRejected(f"{where}: {value!r} is not a number")
    if rule == "fahrenheit":
        return (float(value) - 32) * 5 / 9
    return float(value) * float(rule)


def _times(raw: list[Any], offset_s: int, fmt: str) -> list[datetime]:
    out = []
    for value in raw:
        if fmt == "unixtime":
            if not isinstance(value, int):
                raise FeedRejected(f"hourly.time: {value!r} is not a unix time")
            out.append(datetime.fromtimestamp(value, UTC))
            continue
        try:
            local = datetime.fromisoformat(str(value))
        except ValueError:
            raise FeedRejected(f"hourly.time: {value!r} is not an ISO 8601 time") from None
        if local.tzinfo is None:  # Open-Meteo writes local time without an offset
            local = local.replace(tzinfo=UTC) - timedelta(seconds=offset_s)
        out.append(local.astimezone(UTC))
    return out


def parse_open_meteo(data: bytes) -> Series:
    if len(data) > MAX_BYTES:
        raise FeedRejected(f"document is {len(data)} bytes; the limit is {MAX_BYTES}")
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FeedRejected(f"not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise FeedRejected("expected a JSON object")
    if doc.get("error"):
        raise FeedRejected(f"Open-Meteo error: {doc.get('reason', 'no reason given')}")
    hourly, units = doc.get("hourly"), doc.get("hourly_units", {})
    if not isinstance(hourly, dict) or not isinstance(hourly.get("time"), list):
        raise FeedRejected("no 'hourly.time' array: not an Open-Meteo forecast")
    if not isinstance(units, dict):
        raise FeedRejected("'hourly_units' must be an object")
    offset = doc.get("utc_offset_seconds", 0)
    if not isinstance(offset, int):
        raise FeedRejected("utc_offset_seconds must be a whole number")
    times = _times(hourly["time"], offset, str(units.get("time", "iso8601")))
    columns: dict[str, list[float | None]] = {}
    note: dict[str, str] = {}
    for variable, (field, rules) in VARIABLES.items():
        if variable not in hourly:
            continue
        values = hourly[variable]
        if not isinstance(values, list) or len(values) != len(times):
            raise FeedRejected(f"hourly.{variable}: expected {len(times)} values, one per hour")
        unit = units.get(variable)
        if unit not in rules:
            raise FeedRejected(
                f"hourly_units.{variable}: unit {unit!r} is not one of {', '.join(rules)}"
            )
        columns[field] = [
            _convert(v, rules[unit], f"hourly.{variable}[{i}]") for i, v in enumerate(values)
        ]
        note[field] = f"from {variable} in {unit}"
    if not columns:
        raise FeedRejected(
            "none of precipitation, snowfall, temperature_2m, wind_speed_10m, "
            "wind_gusts_10m is in the response"
        )
    hours = tuple(
        Hour(at, **{field: col[i] for field, col in columns.items()}) for i, at in enumerate(times)
    )
    lat, lon = doc.get("latitude"), doc.get("longitude")
    return Series(
        float(lat) if isinstance(lat, int | float) else 0.0,
        float(lon) if isinstance(lon, int | float) else 0.0,
        hours,
        note,
    )

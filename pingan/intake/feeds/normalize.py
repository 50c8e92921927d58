"""From parsed CAP to the system's warning records. Pure.

`normalize_cap` gives one record per <info> block (each is the warning in one
language), for operators (`pingan feeds parse`). `cap_to_signal` picks what the
matcher acts on: an Actual alert about a CMA warning signal (暴雪, 暴雨, 大风, 道路结冰,
寒潮) whose area covers some of the city's districts.

Areas map onto districts by GB/T 2260 geocode, by district name in areaDesc, or when
a CAP polygon or circle shares area with the district's real outline (a shape drawn
along a border does not reach the district next door). A functional zone has no
published outline: a shape reaches it when it holds the zone's configured centre.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry

from pingan.city import City, District, load_city
from pingan.core.events import WarningSignal
from pingan.geo import disc, interiors_meet, point, ring
from pingan.intake.feeds.cap import CapAlert, CapArea, CapInfo
from pingan.intake.feeds.levels import NOTHING, read_level
from pingan.vocabulary import WARNING_EVENTS

EVENT_WORDS = {
    "blizzard": ("暴雪", "blizzard", "snowstorm", "snow storm"),
    "rainstorm": ("暴雨", "rainstorm", "heavy rain"),
    "gale": ("大风", "gale", "strong wind"),
    "road_icing": ("道路结冰", "road icing", "icy road"),
    "cold_wave": ("寒潮", "cold wave"),
}


@dataclass(frozen=True)
class Mapped:
    kind: str | None  # blizzard, rainstorm, ... or None when not a CMA signal we act on
    level: str | None
    districts: tuple[str, ...]
    level_from: str = ""  # the field the level was read from (pingan/intake/feeds/levels.py)
    lifted: bool = False  # its words lift the signal (解除): a cancel, whatever its msgType


def area_shape(area: CapArea) -> BaseGeometry | None:
    """The area's polygons and circles as one shape (CAP: their union), or None when
    it has neither."""
    parts = [ring(r) for r in area.polygons] + [
        disc(lat, lon, radius_km * 1000) for lat, lon, radius_km in area.circles
    ]
    return shapely.union_all(parts) if parts else None


def _reaches(shape: BaseGeometry, district: District) -> bool:
    if district.outline is not None:
        return interiors_meet(district.outline, shape)
    return bool(shape.covers(point(district.lat, district.lon)))


def area_districts(areas: tuple[CapArea, ...], city: City) -> tuple[str, ...]:
    """The districts the areas cover, in the city's order."""
    found: set[str] = set()
    for area in areas:
        codes = {value for _, value in area.geocodes}
        shape = area_shape(area)
        for district in city.districts.values():
            if district.code in found:
                continue
            if (
                (district.gbt2260 and district.gbt2260 in codes)
                or any(name in area.description for name in district.names())
                or (shape is not None and _reaches(shape, district))
            ):
                found.add(district.code)
    return tuple(code for code in city.districts if code in found)


def map_info(info: CapInfo, city: City) -> Mapped:
    text = f"{info.event} {info.headline}".lower()
    kind = next((k for k, words in EVENT_WORDS.items() if any(w in text for w in words)), None)
    reading = read_level(
        info.parameters, info.event_codes, info.headline, info.event, info.severity
    )
    if not kind and reading.source == "severity":
        reading = NOTHING  # CAP severity names a colour only for the CMA's signals
    return Mapped(
        kind, reading.level, area_districts(info.areas, city), reading.source, reading.lifted
    )


def _iso(value: Any) -> str | None:
    return value.isoformat() if value else None


def normalize_cap(alert: CapAlert, city: City | None = None) -> list[dict[str, Any]]:
    """One record per <info> (the warning in one language); an alert without <info>
    (a bare Cancel or Ack) is one record with only the alert's own fields."""
    city = city or load_city()
    header = {
        "id": alert.identifier,
        "sender": alert.sender,
        "sent": _iso(alert.sent),
        "status": alert.status,
        "msg_type": alert.msg_type,
        "references": list(alert.referenced_ids),
    }
    records = []
    for info in alert.infos:
        mapped = map_info(info, city)
        records.append(
            {
                **header,
                "event": info.event,
                "kind": mapped.kind,
                "level": mapped.level,
                "level_from": mapped.level_from,
                "lifted": mapped.lifted,
                "severity": info.severity,
                "urgency": info.urgency,
                "certainty": info.certainty,
                "language": info.language,
                "headline": info.headline,
                "onset": _iso(info.onset or info.effective),
                "expires": _iso(info.expires),
                "areas": [a.description for a in info.areas],
                "districts": list(mapped.districts),
            }
        )
    return records or [{**header, "event": None, "kind": None, "level": None, "districts": []}]


class NotActionable(ValueError):
    """A valid alert the system does not act on; the message says why."""


def cap_to_signal(alert: CapAlert, city: City | None = None) -> tuple[WarningSignal, str]:
    """The WarningSignal to act on and its headline, or NotActionable."""
    city = city or load_city()
    if alert.status != "Actual":
        raise NotActionable(f"status {alert.status}: not an actual warning")
    if alert.msg_type not in ("Alert", "Update", "Cancel"):
        raise NotActionable(f"msgType {alert.msg_type} carries no warning")
    infos = sorted(alert.infos, key=lambda i: not i.language.lower().startswith("zh"))
    for info in infos:
        mapped = map_info(info, city)
        # A lift (解除) ends the signal even when sent as an Alert or Update.
        msg_type = "Cancel" if mapped.lifted else alert.msg_type
        if mapped.kind is None or (mapped.level is None and msg_type != "Cancel"):
            continue
        if not mapped.districts:
            raise NotActionable(f"{info.event}: its area covers none of the city's districts")
        signal = WarningSignal(
            id=alert.identifier,
            event=mapped.kind,
            level=mapped.level or "blue",  # a cancel's level is never read
            msg_type=msg_type,
            districts=mapped.districts,
            at=alert.sent,
            expires=info.expires,
            references=alert.referenced_ids,
        )
        return signal, info.headline
    if alert.msg_type == "Cancel" and alert.references:
        # Some senders cancel with no <info>: it ends what it references, wherever it was.
        return WarningSignal(
            alert.identifier,
            "blizzard",
            "blue",
            "Cancel",
            tuple(city.districts),
            alert.sent,
            None,
            alert.referenced_ids,
        ), ""
    events = ", ".join(sorted({i.event for i in alert.infos})) or "no <info>"
    raise NotActionable(
        f"{events}: not a CMA warning signal the playbooks act on "
        f"({', '.join(WARNING_EVENTS.values())})"
    )

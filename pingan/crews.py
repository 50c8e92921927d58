"""Crews and the choice of which crew goes. `choose_crews` is pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from pingan.geo import distance_m


@dataclass(frozen=True)
class Crew:
    id: str
    name: str
    leader: str
    phone: str
    skills: tuple[str, ...]
    unit: str
    home_lat: float
    home_lon: float
    capacity: int = 1
    equipment: tuple[str, ...] = ()


@dataclass(frozen=True)
class CrewChoice:
    crew: Crew
    why: str


class RosterError(ValueError):
    pass


_REQUIRED = ("id", "name", "phone", "skills", "home")


def parse_roster(text: str, file: str) -> list[Crew]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RosterError(f"{file}: not valid YAML ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("crews"), list):
        raise RosterError(f"{file}: expected a mapping with a 'crews' list")
    crews: list[Crew] = []
    seen: set[str] = set()
    for n, row in enumerate(data["crews"], start=1):
        where = f"{file}: crews[{n}]"
        if not isinstance(row, dict):
            raise RosterError(f"{where}: expected a mapping")
        missing = [k for k in _REQUIRED if k not in row]
        if missing:
            raise RosterError(f"{where}: missing {', '.join(missing)}")
        home = row["home"]
        if not (isinstance(home, list) and len(home) == 2):
            raise RosterError(f"{where}.home: expected [lat, lon], got {home!r}")
        if row["id"] in seen:
            raise RosterError(f"{where}.id: duplicate crew id {row['id']!r}")
        seen.add(row["id"])
        try:
            crews.append(
                Crew(
                    id=str(row["id"]),
                    name=str(row["name"]),
                    leader=str(row.get("leader", "")),
                    phone=str(row["phone"]),
                    skills=tuple(str(s) for s in row["skills"]),
                    unit=str(row.get("unit", "")),
                    home_lat=float(home[0]),
                    home_lon=float(home[1]),
                    capacity=int(row.get("capacity", 1)),
                    equipment=tuple(str(e) for e in row.get("equipment", ())),
                )
            )
        except (TypeError, ValueError) as exc:
            raise RosterError(f"{where}: {exc}") from None
    return crews


def load_roster(path: Path) -> list[Crew]:
    return parse_roster(path.read_text(encoding="utf-8"), str(path))


def choose_crews(
    skill: str,
    count: int,
    lat: float | None,
    lon: float | None,
    crews: Sequence[Crew],
    active_load: Mapping[str, int],
    exclude: frozenset[str] = frozenset(),
    equipment: Sequence[str] = (),
) -> list[CrewChoice]:
    """The `count` nearest crews with `skill` (and all of `equipment`) that have spare
    capacity.

    Ties (same distance, or no location) go to the least-loaded crew, then by id,
    so the choice is reproducible."""
    candidates = []
    for crew in crews:
        if skill not in crew.skills or crew.id in exclude:
            continue
        if not set(equipment) <= set(crew.equipment):
            continue
        load = active_load.get(crew.id, 0)
        if load >= crew.capacity:
            continue
        dist = (
            distance_m(lat, lon, crew.home_lat, crew.home_lon)
            if lat is not None and lon is not None
            else None
        )
        candidates.append((dist if dist is not None else 0.0, load, crew.id, crew, dist))
    candidates.sort(key=lambda c: c[:3])
    choices = []
    for _, load, _, crew, dist in candidates[:count]:
        where = f"{dist / 1000:.1f} km from base" if dist is not None else "no location given"
        choices.append(
            CrewChoice(
                crew, f"nearest available with skill {skill!r}: {where}, {load} active task(s)"
            )
        )
    return choices

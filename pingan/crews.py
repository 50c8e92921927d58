"""Crews, their shifts and units, and the choice of which crew goes. `choose_crews`
is pure: (need, crews, their load, now) -> ranked choices, each with the reason."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

import yaml

from pingan.geo import distance_m
from pingan.vocabulary import SEGMENT_KINDS, crew_reason

CITY_TZ = timezone(timedelta(hours=8))  # shifts are written in local (Beijing) time


@dataclass(frozen=True)
class Shift:
    """A daily window in local time; start > end wraps midnight (a night shift)."""

    start: time = time(0, 0)
    end: time = time(0, 0)  # start == end: around the clock

    def covers(self, at: datetime) -> bool:
        local = at.astimezone(CITY_TZ).time()
        if self.start == self.end:
            return True
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


@dataclass(frozen=True)
class Override:
    """From `start` to `end`, the crew is (on_shift=True) or is not on shift:
    storms, holidays, sick leave."""

    start: datetime
    end: datetime
    on_shift: bool


@dataclass(frozen=True)
class Crew:
    id: str
    name: str  # in Chinese: a crew's and a supervisor's texts name it so
    leader: str
    phone: str
    skills: tuple[str, ...]
    unit: str
    home_lat: float
    home_lon: float
    capacity: int = 1
    equipment: tuple[str, ...] = ()
    segments: tuple[str, ...] = ()  # road segments this crew owns (包路段)
    shift: Shift = Shift()
    overrides: tuple[Override, ...] = ()
    name_en: str = ""  # its English name for the console; "" when it has none

    def on_shift(self, at: datetime) -> bool:
        for override in self.overrides:
            if override.start <= at < override.end:
                return override.on_shift
        return self.shift.covers(at)


@dataclass(frozen=True)
class Staff:
    role: str  # supervisor (of a unit) or duty_leader
    unit: str  # "" for the duty leader
    name: str
    phone: str


@dataclass(frozen=True)
class RoadSegment:
    """A road segment (包路段) a crew owns, as its text names it."""

    id: str
    name: str
    kind: str  # one of pingan.vocabulary.SEGMENT_KINDS


@dataclass(frozen=True)
class Roster:
    crews: tuple[Crew, ...]
    staff: tuple[Staff, ...] = field(default=())
    segments: tuple[RoadSegment, ...] = field(default=())


@dataclass(frozen=True)
class CrewReason:
    """Why a crew was chosen, as data: the rule that picked it (one of
    pingan.vocabulary.CREW_REASON_RULES), where it is and how busy. The console words it
    in the dispatcher's language; `text` is the English the audit trail and logs keep."""

    rule: str  # segment_owner, owner_unit or nearest
    skill: str
    segment: str | None = None  # the incident's road segment, when known
    unit: str = ""  # the crew's unit
    km: float | None = None  # from the crew's base, to 0.1 km; None: no location given
    load: int = 0  # active tasks
    recent: int = 0  # tasks in the last 24 h

    def params(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def text(self) -> str:
        return crew_reason(self.params(), "en")


@dataclass(frozen=True)
class CrewChoice:
    crew: Crew
    reason: CrewReason

    @property
    def why(self) -> str:
        return self.reason.text


class RosterError(ValueError):
    pass


_REQUIRED = ("id", "name", "phone", "skills", "home")


def _shift(raw: object, where: str) -> Shift:
    if raw in (None, "24h", "all-day"):
        return Shift()
    try:
        start, end = str(raw).split("-")
        return Shift(time.fromisoformat(start.strip()), time.fromisoformat(end.strip()))
    except ValueError:
        raise RosterError(f"{where}.shift: {raw!r} is not 'HH:MM-HH:MM' or '24h'") from None


def _overrides(raw: object, where: str) -> tuple[Override, ...]:
    out = []
    for n, item in enumerate(raw or [], start=1):  # type: ignore[union-attr]
        try:
            start = datetime.fromisoformat(str(item["from"]))
            end = datetime.fromisoformat(str(item["to"]))
            if start.tzinfo is None or end.tzinfo is None:
                raise ValueError("times need a zone, e.g. +08:00")
            out.append(Override(start, end, bool(item["on_shift"])))
        except (KeyError, TypeError, ValueError) as exc:
            raise RosterError(f"{where}.overrides[{n}]: {exc}") from None
    return tuple(out)


def _name(raw: object, where: str) -> tuple[str, str]:
    """A crew's name: one text, or {zh: ..., en: ...} (the console shows the one of the
    dispatcher's language; texts to phones use zh)."""
    if isinstance(raw, dict):
        unknown = set(raw) - {"zh", "en"}
        zh, en = raw.get("zh"), raw.get("en", "")
        if unknown or not isinstance(zh, str) or not zh.strip() or not isinstance(en, str):
            raise RosterError(
                f"{where}.name: expected text or {{zh: ..., en: ...}} with zh required, got {raw!r}"
            )
        return zh.strip(), en.strip()
    if not isinstance(raw, str | int) or not str(raw).strip():
        raise RosterError(f"{where}.name: expected text or {{zh: ..., en: ...}}, got {raw!r}")
    return str(raw).strip(), ""


def parse_roster(text: str, file: str) -> Roster:
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
        name, name_en = _name(row["name"], where)
        try:
            crews.append(
                Crew(
                    id=str(row["id"]),
                    name=name,
                    name_en=name_en,
                    leader=str(row.get("leader", "")),
                    phone=str(row["phone"]),
                    skills=tuple(str(s) for s in row["skills"]),
                    unit=str(row.get("unit", "")),
                    home_lat=float(home[0]),
                    home_lon=float(home[1]),
                    capacity=int(row.get("capacity", 1)),
                    equipment=tuple(str(e) for e in row.get("equipment", ())),
                    segments=tuple(str(s) for s in row.get("segments", ())),
                    shift=_shift(row.get("shift"), where),
                    overrides=_overrides(row.get("overrides"), where),
                )
            )
        except (TypeError, ValueError) as exc:
            if isinstance(exc, RosterError):
                raise
            raise RosterError(f"{where}: {exc}") from None
    staff = []
    for n, row in enumerate(data.get("staff", []) or [], start=1):
        where = f"{file}: staff[{n}]"
        if not isinstance(row, dict) or row.get("role") not in ("supervisor", "duty_leader"):
            raise RosterError(f"{where}: role must be supervisor or duty_leader")
        if not row.get("phone") or not row.get("name"):
            raise RosterError(f"{where}: name and phone are required")
        if row["role"] == "supervisor" and not row.get("unit"):
            raise RosterError(f"{where}: a supervisor needs a unit")
        staff.append(
            Staff(row["role"], str(row.get("unit", "")), str(row["name"]), str(row["phone"]))
        )
    segments = _segments(data.get("segments"), file)
    named = {s.id for s in segments}
    for n, crew in enumerate(crews, start=1):
        unnamed = [s for s in crew.segments if s not in named]
        if unnamed:
            raise RosterError(
                f"{file}: crews[{n}].segments: {', '.join(unnamed)} not listed under "
                "'segments' (each needs a name and a kind)"
            )
    return Roster(tuple(crews), tuple(staff), segments)


def _segments(rows: object, file: str) -> tuple[RoadSegment, ...]:
    if rows is None:
        return ()
    if not isinstance(rows, list):
        raise RosterError(f"{file}: segments: expected a list")
    found: dict[str, RoadSegment] = {}
    for n, row in enumerate(rows, start=1):
        where = f"{file}: segments[{n}]"
        if not isinstance(row, dict):
            raise RosterError(f"{where}: expected a mapping")
        for key in ("id", "name", "kind"):
            if not isinstance(row.get(key), str) or not row[key].strip():
                raise RosterError(f"{where}.{key}: required text, got {row.get(key)!r}")
        if row["kind"] not in SEGMENT_KINDS:
            raise RosterError(
                f"{where}.kind: {row['kind']!r} is not one of {', '.join(SEGMENT_KINDS)}"
            )
        if row["id"] in found:
            raise RosterError(f"{where}.id: duplicate segment id {row['id']!r}")
        found[row["id"]] = RoadSegment(row["id"], row["name"].strip(), row["kind"])
    return tuple(found.values())


def load_roster(path: Path) -> Roster:
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
    segment: str | None = None,
    now: datetime | None = None,
    recent_assignments: Mapping[str, int] | None = None,
) -> list[CrewChoice]:
    """The `count` best crews with `skill` and `equipment` that are on shift and have
    spare capacity: the crew owning the road segment first, then its unit, then the
    nearest; among equals, the one with fewer recent assignments (fairness), then id.
    """
    recent = recent_assignments or {}
    owners = [c for c in crews if segment and segment in c.segments]
    owner_units = {c.unit for c in owners}
    candidates = []
    for crew in crews:
        if skill not in crew.skills or crew.id in exclude:
            continue
        if not set(equipment) <= set(crew.equipment):
            continue
        if now is not None and not crew.on_shift(now):
            continue
        load = active_load.get(crew.id, 0)
        if load >= crew.capacity:
            continue
        dist = (
            distance_m(lat, lon, crew.home_lat, crew.home_lon)
            if lat is not None and lon is not None
            else None
        )
        tier = 0 if crew in owners else 1 if crew.unit in owner_units else 2
        rank = (tier, round(dist or 0.0, -2), recent.get(crew.id, 0), load, crew.id)
        candidates.append((rank, crew, dist, load))
    candidates.sort(key=lambda c: c[0])
    choices = []
    for rank, crew, dist, load in candidates[:count]:
        rule = ("segment_owner", "owner_unit", "nearest")[rank[0]]
        reason = CrewReason(
            rule,
            skill,
            segment=segment if rule != "nearest" else None,
            unit=crew.unit,
            km=round(dist / 1000, 1) if dist is not None else None,
            load=load,
            recent=recent.get(crew.id, 0),
        )
        choices.append(CrewChoice(crew, reason))
    return choices


def crew_to_row(crew: Crew) -> dict[str, object]:
    """The crews table's columns for this crew (the table stores the roster as read)."""
    return {
        "name": crew.name,
        "name_en": crew.name_en,
        "leader": crew.leader,
        "phone": crew.phone,
        "skills": list(crew.skills),
        "unit": crew.unit,
        "home_lat": crew.home_lat,
        "home_lon": crew.home_lon,
        "capacity": crew.capacity,
        "equipment": list(crew.equipment),
        "segments": list(crew.segments),
        "shift": f"{crew.shift.start.isoformat('minutes')}-{crew.shift.end.isoformat('minutes')}",
        "overrides": [
            {"from": o.start.isoformat(), "to": o.end.isoformat(), "on_shift": o.on_shift}
            for o in crew.overrides
        ],
    }


def crew_from_row(row: object) -> Crew:
    get = row._mapping  # type: ignore[attr-defined]
    return Crew(
        id=get["id"],
        name=get["name"],
        name_en=get["name_en"] or "",
        leader=get["leader"],
        phone=get["phone"],
        skills=tuple(get["skills"]),
        unit=get["unit"],
        home_lat=get["home_lat"],
        home_lon=get["home_lon"],
        capacity=get["capacity"],
        equipment=tuple(get["equipment"] or ()),
        segments=tuple(get["segments"] or ()),
        shift=_shift(get["shift"] or "24h", f"crew {get['id']}"),
        overrides=_overrides(get["overrides"] or [], f"crew {get['id']}"),
    )

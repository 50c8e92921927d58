"""Citizen warnings as the CAP 1.2 messages the bureau publishes (/cap/alerts/{id}.xml).

`warning_alert` is pure: a warning row and the warnings it corrects in, a CapAlert
out, which `pingan.intake.feeds.cap.write_cap` writes and that module's parser reads
back to the same CapAlert. Times are local with their offset (+08:00, as the CMA
writes them). An Update or Cancel references the earlier messages it corrects, each
as CAP names one: our sender, its identifier and *its* sent time. A warning targeted
by polygon or circle carries that shape as its area; one targeted by district carries
the districts' GB/T 2260 codes. `published_alert` loads what the pure part needs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from pingan.city import City, load_city
from pingan.crews import CITY_TZ
from pingan.intake.feeds.cap import CapAlert, CapArea, CapInfo, CapReference
from pingan.intake.feeds.levels import SEVERITY_LEVEL
from pingan.store import as_utc
from pingan.store.schema import citizen_warnings
from pingan.vocabulary import WARNING_EVENTS

SENDER = "warnings@luohe-cgj.example.cn"
SENDER_NAME = "漯河市城市管理局 Luohe Urban Management Bureau"
SEVERITY = {level: severity for severity, level in SEVERITY_LEVEL.items()}
GEOCODE = "GB/T 2260"
PUBLISHED = ("sent", "cancelled")
MAX_CHAIN = 50  # corrections of corrections referenced at most


def identifier(warning_id: int) -> str:
    return f"LUOHE-CGJ-{warning_id}"


def local(value: datetime) -> datetime:
    """A stored time as the city reads it, to the second CAP writes."""
    return as_utc(value).astimezone(CITY_TZ).replace(microsecond=0)  # type: ignore[union-attr]


def sent_at(row: Any) -> datetime:
    return local(row.approved_at or row.created_at)


def stored_area(area: CapArea) -> dict[str, Any] | None:
    """A warning's target shape as the `area` column keeps it (None: no shape)."""
    if not area.polygons and not area.circles:
        return None
    return {
        "polygons": [[list(point) for point in ring] for ring in area.polygons],
        "circles": [list(circle) for circle in area.circles],
    }


def target_area(area: Mapping[str, Any] | None) -> CapArea:
    """The stored shape of a warning targeted by polygon or circle (no description)."""
    area = area or {}
    return CapArea(
        "",
        polygons=tuple(
            tuple((float(lat), float(lon)) for lat, lon in ring)
            for ring in area.get("polygons", ())
        ),
        circles=tuple((float(a), float(o), float(r)) for a, o, r in area.get("circles", ())),
    )


def warning_alert(row: Any, corrected: Sequence[Any], city: City) -> CapAlert:
    """`corrected`: the warning `row` corrects, then the one that corrected, and so on."""
    shape = target_area(row.area)
    districts = [city.districts[d] for d in row.districts]
    # Geocodes beside a shape would widen the area to the whole districts (CAP: union).
    geocodes = (
        ()
        if shape.polygons or shape.circles
        else tuple((GEOCODE, d.gbt2260) for d in districts if d.gbt2260)
    )
    infos = []
    for language, text, event, names in (
        (
            "zh-CN",
            row.text_zh,
            WARNING_EVENTS.get(row.event, row.event),
            "、".join(d.zh for d in districts),
        ),
        ("en-US", row.text_en, row.event, ", ".join(d.en for d in districts)),
    ):
        infos.append(
            CapInfo(
                language=language,
                categories=("Met",),
                event=event,
                urgency="Immediate" if row.level == "red" else "Expected",
                severity=SEVERITY.get(row.level, "Unknown"),
                certainty="Likely",
                headline=text.strip()[:160].strip(),
                description=text.strip(),
                sender_name=SENDER_NAME,
                expires=local(row.expires_at) if row.expires_at else None,
                parameters=(("level", row.level),),
                areas=(CapArea(names, shape.polygons, shape.circles, geocodes),),
            )
        )
    return CapAlert(
        version="1.2",
        identifier=identifier(row.id),
        sender=SENDER,
        sent=sent_at(row),
        status="Actual",
        msg_type=row.msg_type,
        scope="Public",
        references=tuple(
            CapReference(SENDER, identifier(r.id), sent_at(r)) for r in reversed(corrected)
        ),
        infos=tuple(infos),
    )


def published_alert(conn: Connection, warning_id: int) -> CapAlert | None:
    """A sent (or since cancelled) warning as CAP, or None if there is none."""

    def load(wid: int) -> Any:
        return conn.execute(select(citizen_warnings).where(citizen_warnings.c.id == wid)).first()

    row = load(warning_id)
    if row is None or row.status not in PUBLISHED:
        return None
    corrected: list[Any] = []
    earlier = row
    while earlier.corrects is not None and len(corrected) < MAX_CHAIN:
        earlier = load(earlier.corrects)
        if earlier is None:
            break
        corrected.append(earlier)
    return warning_alert(row, corrected, load_city())

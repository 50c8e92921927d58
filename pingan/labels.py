"""What a dispatcher reads instead of a code: an incident's category, district and
level, a task's state and why its crew was chosen, in Chinese and English. The words
come from pingan.vocabulary; districts from the city. Unknown codes come back as
themselves."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pingan.city import load_city
from pingan.vocabulary import (
    CREW_REASON_RULES,
    Label,
    category_label,
    crew_reason,
    level_label,
    status_label,
)


def district_label(code: str | None) -> Label | None:
    if not code:
        return None
    district = load_city().districts.get(code)
    return {"zh": district.zh, "en": district.en} if district else {"zh": code, "en": code}


def incident_labels(category: str, district: str | None, level: str) -> dict[str, Label | None]:
    return {
        "category": category_label(category),
        "district": district_label(district),
        "level": level_label(level),
    }


def reason_label(reason: Mapping[str, Any] | None, why: str, segment_name: str | None) -> Label:
    """Why a crew was chosen, in each language, from its data (CrewReason's fields);
    a task written without that data (by hand) shows the text it was written with."""
    if not reason or reason.get("rule") not in CREW_REASON_RULES:
        return {"zh": why, "en": why}
    return {lang: crew_reason(reason, lang, segment_name) for lang in ("zh", "en")}


def crew_label(name: str, name_en: str | None) -> Label:
    """A crew by name: its Chinese name, and its English one where the roster has it."""
    return {"zh": name, "en": name_en or name}


def assignment_labels(
    crew: Label,
    state: str,
    reason: Mapping[str, Any] | None,
    why: str,
    segment_names: Mapping[str, str],
) -> dict[str, Label]:
    """A task's crew, state and why its crew was chosen, in words. `segment_names` maps
    road segment ids to their names (pingan.queries.segment_names)."""
    segment = (reason or {}).get("segment")
    return {
        "crew": crew,
        "state": status_label(state),
        "why": reason_label(reason, why, segment_names.get(segment) if segment else None),
    }

"""What a dispatcher reads instead of a code: an incident's category, district and
level, a task's state and why its crew was chosen, in Chinese and English. The words
come from pingan.vocabulary; districts from the city. Unknown codes come back as
themselves."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pingan.city import load_city
from pingan.vocabulary import (
    ACTORS,
    CREW_REASON_RULES,
    CREW_VIA,
    FOR_THE_CREW,
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


def segment_label(segment: str | None, names: Mapping[str, str]) -> Label | None:
    """A road segment by its name (人民路) in both languages; None when there is no
    segment or nothing names it (the console then shows its id as an id)."""
    if not segment or segment not in names:
        return None
    return {"zh": names[segment], "en": names[segment]}


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


def actor_label(actor: str, crews: Mapping[str, Label]) -> dict[str, str | None]:
    """Who did something, as the trail shows it: {"person": a login name (shown as
    written, in no language) or None, "zh": ..., "en": ...} where zh/en say what the
    actor is (system, a crew by name, how a crew answered, "for the crew")."""
    if actor in ACTORS:
        zh, en = ACTORS[actor]
        return {"person": None, "zh": zh, "en": en}
    if actor.startswith("crew:"):
        crew_id, _, via = actor.removeprefix("crew:").partition(" via ")
        crew = crews.get(crew_id, {"zh": crew_id, "en": crew_id})
        how = CREW_VIA.get(via, (via, via))
        return {"person": None, "zh": f"{crew['zh']}（{how[0]}）", "en": f"{crew['en']} ({how[1]})"}
    if actor in crews:  # the dry run's crews answer as themselves
        return {"person": None, **crews[actor]}
    person, marker, _ = actor.partition(" for the crew")
    if marker:
        return {"person": person, "zh": FOR_THE_CREW[0], "en": FOR_THE_CREW[1]}
    return {"person": actor, "zh": "", "en": ""}


def trail_note(action: str, detail: Mapping[str, Any]) -> Label | None:
    """What an audit entry adds beyond its action, in words: the text a person typed
    (a resolution note, why a crew declined, why an incident was reopened), a level
    change, the incidents merged or split off. None when there is nothing to add."""
    typed = detail.get("note") if action != "incident.reopened" else detail.get("reason")
    if isinstance(typed, str) and typed.strip():
        return {"zh": typed.strip(), "en": typed.strip()}
    if action == "incident.upgraded":
        old, new = level_label(str(detail.get("from"))), level_label(str(detail.get("to")))
        return {"zh": f"{old['zh']}→{new['zh']}", "en": f"{old['en']} → {new['en']}"}
    if action == "incident.merged" and detail.get("merged") is not None:
        n = detail["merged"]
        return {"zh": f"并入事件{n}", "en": f"incident {n} merged in"}
    if action == "incident.split" and detail.get("new_incident") is not None:
        n = detail["new_incident"]
        return {"zh": f"拆出为事件{n}", "en": f"split off as incident {n}"}
    return None


def review_label(reason: str, classification: Mapping[str, Any] | None) -> Label:
    """Why a report waits for a dispatcher, in words: the category was unsure (with the
    classifier's guess and cue words) or the place unknown; any other reason as written."""
    if reason.startswith("category unsure") and classification:
        guess = category_label(str(classification.get("category", "")))
        confidence = float(classification.get("confidence") or 0)
        cues = [str(w) for w in classification.get("words") or []]
        return {
            "zh": f"类别不确定：可能是{guess['zh']}，把握{confidence:.0%}"
            + (f"（线索：{'、'.join(cues)}）" if cues else "（没有线索词）"),
            "en": f"category unsure: perhaps {guess['en']}, {confidence:.0%} sure"
            + (f" (cues: {', '.join(cues)})" if cues else " (no cue words)"),
        }
    if reason.startswith("location unknown"):
        return {
            "zh": "位置不明：没有坐标，也没有认得出的道路或地标",
            "en": "location unknown: no coordinates and no known road or landmark",
        }
    return {"zh": reason, "en": reason}

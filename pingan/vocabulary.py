"""The words of the domain, in one place: report categories, warning events, levels,
measurements, and the states of incidents and assignments, each with its Chinese and
English name. Everything else (the playbook format, messages, the console, Open311)
reads them from here. Pure; imports nothing from the project.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal, get_args

Label = dict[str, str]  # {"zh": ..., "en": ...}

# ---- levels -----------------------------------------------------------------------
# "watch" is internal: an incident seen but not yet corroborated (no actions).
LEVEL_ORDER: tuple[str, ...] = ("watch", "routine", "blue", "yellow", "orange", "red")
Level = Literal["routine", "blue", "yellow", "orange", "red"]
WarningLevel = Literal["blue", "yellow", "orange", "red"]
LEVELS: dict[str, tuple[str, str]] = {
    "watch": ("待核实", "watch (not yet corroborated)"),
    "routine": ("一般", "routine"),
    "blue": ("蓝色", "blue"),
    "yellow": ("黄色", "yellow"),
    "orange": ("橙色", "orange"),
    "red": ("红色", "red"),
}


def level_rank(level: str) -> int:
    return LEVEL_ORDER.index(level)


# The words a sender writes for a warning signal's level (its colour), lower case.
WARNING_LEVEL_WORDS: dict[str, str] = {
    word.lower(): level for level in get_args(WarningLevel) for word in LEVELS[level]
}


def warning_level(word: object) -> str | None:
    """The warning level a word names ("橙色", "Orange", "orange"), or None."""
    return WARNING_LEVEL_WORDS.get(str(word).strip().lower())


# ---- official warning signals (气象灾害预警信号), by their English keys --------------
WarningEvent = Literal["blizzard", "rainstorm", "gale", "road_icing", "cold_wave"]
WARNING_EVENTS: dict[str, str] = {
    "blizzard": "暴雪",
    "rainstorm": "暴雨",
    "gale": "大风",
    "road_icing": "道路结冰",
    "cold_wave": "寒潮",
}

# ---- what citizens report (the Open311 service codes) ------------------------------
CATEGORIES: dict[str, tuple[str, str]] = {
    "fallen_tree": ("倒伏树木", "Fallen tree"),
    "waterlogging": ("道路积水", "Flooded road"),
    "snow_ice": ("道路积雪结冰", "Snow or ice"),
    "manhole": ("井盖缺失破损", "Manhole cover"),
    "streetlight": ("路灯故障", "Streetlight out"),
}

# ---- the places a crew sees to first (a playbook's `targets`, in priority order) ----
TARGETS: dict[str, tuple[str, str]] = {
    "bridge": ("桥梁", "bridges"),
    "overpass": ("立交桥", "overpasses"),
    "underpass": ("下穿通道", "underpasses"),
    "culvert": ("涵洞", "culverts"),
    "main_road": ("主干道", "main roads"),
    "school_gate": ("学校门口", "school gates"),
    "hospital_access": ("医院通道", "hospital access roads"),
    "low_lying_area": ("低洼路段", "low-lying streets"),
    "drainage_outlet": ("排水口", "drainage outlets"),
}
# ---- what kind of road a crew's segment (包路段) is --------------------------------
SEGMENT_KINDS: dict[str, tuple[str, str]] = {
    "bridge": ("桥梁", "bridge"),
    "overpass": ("立交桥", "overpass"),
    "culvert": ("涵洞", "culvert"),
    "underpass": ("下穿通道", "underpass"),
    "main_road": ("主干道", "main road"),
    "back_street": ("背街小巷", "back street"),
}
# A playbook without targets still sends crews to bridges and culverts first, then the
# main roads (the bureau's standing order in snow and ice), then the rest.
DEFAULT_SEGMENT_PRIORITY = ("bridge", "overpass", "culvert", "underpass", "main_road")

# ---- what a crew can do (a roster's `skills`, a playbook's dispatch `skill`) ----------
SKILLS: dict[str, tuple[str, str]] = {
    "tree": ("园林抢险", "tree"),
    "drainage": ("排水抢险", "drainage"),
    "pump": ("泵车排涝", "pump"),
    "snow_ice": ("除雪破冰", "snow and ice"),
    "lighting": ("路灯抢修", "lighting"),
    "manhole": ("井盖抢修", "manhole"),
    "roads": ("道路抢修", "roads"),
}

# ---- why a crew was chosen (pingan/crews.py `choose_crews`), in words ---------------
# A choice is kept as data (its rule and numbers, `CrewReason`); these are its words.
# The English is also the text the audit trail and the logs keep. {segment} is the
# segment's name where known (人民路), else its id; the Chinese never shows an id.
CREW_REASON_RULES: dict[str, tuple[str, str]] = {
    "segment_owner": ("负责该路段{segment_zh}", "owns road segment {segment}"),
    "owner_unit": (
        "与路段负责班组同一单元（负责班组忙或不在班）",
        "same unit {unit} as the segment owner (owner busy or off shift)",
    ),
    "nearest": ("最近的空闲{skill_zh}班组", "nearest available with skill '{skill}'"),
}
CREW_REASON_DISTANCE = ("距驻地{km:.1f}公里", "{km:.1f} km from base")
CREW_REASON_NO_LOCATION = ("报告未给出位置", "no location given")
CREW_REASON_LOAD = (
    "手头任务{load}项，近24小时派单{recent}次",
    "{load} active task(s), {recent} in the last 24 h",
)


def crew_reason(reason: Mapping[str, Any], lang: str, segment_name: str | None = None) -> str:
    """Why a crew was chosen, in one language ("zh" or "en"): the rule, then where the
    crew is and how busy. `reason` is a `CrewReason`'s fields."""
    n = 0 if lang == "zh" else 1
    segment = str(reason.get("segment") or "")
    skill = str(reason.get("skill") or "")
    words = CREW_REASON_RULES[str(reason["rule"])][n].format(
        segment=f"{segment} ({segment_name})" if segment_name else segment,
        segment_zh=f"（{segment_name}）" if segment_name else "",
        unit=reason.get("unit") or "",
        skill=skill,
        skill_zh=SKILLS.get(skill, (skill, skill))[0],
    )
    km = reason.get("km")
    if km is None:
        where = CREW_REASON_NO_LOCATION[n]
    else:
        where = CREW_REASON_DISTANCE[n].format(km=float(km))
    load = CREW_REASON_LOAD[n].format(load=reason.get("load", 0), recent=reason.get("recent", 0))
    return f"{words}：{where}，{load}" if n == 0 else f"{words}: {where}, {load}"


STAFF_ROLES: dict[str, tuple[str, str]] = {
    "supervisor": ("班组主管", "supervisor"),
    "duty_leader": ("值班领导", "duty leader"),
    "bureau_leader": ("局领导", "bureau leader"),
}

# ---- what the threshold evaluator measures per district ----------------------------
Metric = Literal[
    "precipitation_mm",
    "snowfall_mm",
    "wind_gust_ms",
    "wind_mean_ms",
    "temperature_min_c",
    "temperature_drop_c",
]


@dataclass(frozen=True)
class MetricWords:
    """A measurement: what it is, its names as an incident category, and the physical
    bounds outside which a threshold could never be reached."""

    description: str
    zh: str
    en: str
    low: float
    high: float


METRICS: dict[str, MetricWords] = {
    "precipitation_mm": MetricWords(
        "rain and melted snow, summed over the window (mm)",
        "降水量超阈值",
        "Rainfall over threshold",
        0,
        1000,
    ),
    "snowfall_mm": MetricWords(
        "snowfall as water equivalent, summed over the window (mm)",
        "降雪量超阈值",
        "Snowfall over threshold",
        0,
        500,
    ),
    "wind_gust_ms": MetricWords(
        "strongest gust in the window (m/s)", "阵风超阈值", "Gusts over threshold", 0, 110
    ),
    "wind_mean_ms": MetricWords(
        "strongest 10-minute mean wind in the window (m/s)",
        "平均风速超阈值",
        "Mean wind over threshold",
        0,
        90,
    ),
    "temperature_min_c": MetricWords(
        "lowest air temperature in the window (°C)", "低温", "Low temperature", -60, 50
    ),
    "temperature_drop_c": MetricWords(
        "fall of the minimum temperature over the window (°C)",
        "急剧降温",
        "Sharp temperature drop",
        0,
        50,
    ),
}
WINDOWS_H: tuple[int, ...] = (1, 3, 6, 12, 24, 48)


# ---- states -----------------------------------------------------------------------
class IncidentStatus(StrEnum):
    OPEN = "open"  # known, no crew yet (or waiting for corroboration)
    DISPATCHED = "dispatched"  # crews assigned, none acknowledged
    IN_PROGRESS = "in_progress"  # at least one crew acknowledged
    RESOLVED = "resolved"


class AssignmentState(StrEnum):
    ASSIGNED = "assigned"
    ACKNOWLEDGED = "acknowledged"
    EN_ROUTE = "en_route"
    ON_SCENE = "on_scene"
    DONE = "done"
    DECLINED = "declined"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"


# What a crew can do with a task (CrewAction in pingan/core/assignments.py).
CREW_ACTIONS: dict[str, tuple[str, str]] = {
    "ack": ("接单", "Accept"),
    "decline": ("拒绝", "Decline"),
    "en_route": ("出发", "En route"),
    "on_scene": ("到场", "On scene"),
    "done": ("完成", "Done"),
}

STATUSES: dict[str, tuple[str, str]] = {
    IncidentStatus.OPEN: ("待派单", "open"),
    IncidentStatus.DISPATCHED: ("已派单", "dispatched"),
    IncidentStatus.IN_PROGRESS: ("处置中", "in progress"),
    IncidentStatus.RESOLVED: ("已办结", "resolved"),
    AssignmentState.ASSIGNED: ("待接单", "assigned"),
    AssignmentState.ACKNOWLEDGED: ("已接单", "acknowledged"),
    AssignmentState.EN_ROUTE: ("在途", "en route"),
    AssignmentState.ON_SCENE: ("已到场", "on scene"),
    AssignmentState.DONE: ("已完成", "done"),
    AssignmentState.DECLINED: ("已拒绝", "declined"),
    AssignmentState.TIMED_OUT: ("超时已转派", "timed out, passed on"),
    AssignmentState.CANCELLED: ("已取消", "cancelled"),
}

# The Literals feed the playbook format's validation; the tables feed every label.
# A word added to one and not the other is a mistake this catches at import.
assert set(get_args(WarningEvent)) == set(WARNING_EVENTS)
assert set(get_args(Metric)) == set(METRICS)
assert set(get_args(Level)) | {"watch"} == set(LEVELS) == set(LEVEL_ORDER)


# ---- labels -----------------------------------------------------------------------
def category_label(category: str) -> Label:
    """An incident's category in words: a report category, a warning event
    ("暴雪预警") or a threshold measurement. Unknown codes come back as themselves."""
    if category in CATEGORIES:
        zh, en = CATEGORIES[category]
        return {"zh": zh, "en": en}
    if category in WARNING_EVENTS:
        english = category.replace("_", " ")
        return {"zh": f"{WARNING_EVENTS[category]}预警", "en": f"{english.capitalize()} warning"}
    if category in METRICS:
        words = METRICS[category]
        return {"zh": words.zh, "en": words.en}
    return {"zh": category, "en": category}


def category_zh(category: str, unknown: str | None = None) -> str:
    """The Chinese name a message uses; `unknown` (default: the code) otherwise."""
    label = category_label(category)
    if label["zh"] == category and unknown is not None:
        return unknown
    return label["zh"]


def incident_title_zh(category: str, level: str) -> str:
    """An incident as a crew's text names it: 暴雪橙色预警 for a warning signal at its
    colour, 倒伏树木（一般） for the rest."""
    colour = LEVELS.get(level, (level, level))[0]
    if category in WARNING_EVENTS and level in get_args(WarningLevel):
        return f"{WARNING_EVENTS[category]}{colour}预警"
    return f"{category_zh(category)}（{colour}）"


def targets_zh(targets: Sequence[str]) -> str:
    """A playbook's priority places as a crew reads them: 桥梁、涵洞、主干道."""
    return "、".join(TARGETS.get(t, (t, t))[0] for t in targets)


def level_label(level: str) -> Label:
    zh, en = LEVELS.get(level, (level, level))
    return {"zh": zh, "en": en}


def skill_label(skill: str) -> Label:
    zh, en = SKILLS.get(skill, (skill, skill))
    return {"zh": zh, "en": en}


def status_label(status: str) -> Label:
    zh, en = STATUSES.get(status, (status, status))
    return {"zh": zh, "en": en}

"""What a dispatcher reads instead of a code: an incident's category, district and
level in Chinese and English. Pure; unknown codes come back as themselves."""

from __future__ import annotations

from pingan.city import load_city
from pingan.hotline.services import CATALOGUE

Label = dict[str, str]  # {"zh": ..., "en": ...}

# CMA warning signals (气象灾害预警信号) by their English keys.
EVENT_ZH = {
    "blizzard": "暴雪",
    "rainstorm": "暴雨",
    "gale": "大风",
    "road_icing": "道路结冰",
    "cold_wave": "寒潮",
}
# What the threshold evaluator measures (playbooks.model.METRICS).
METRIC_LABELS = {
    "precipitation_mm": ("降水量超阈值", "Rainfall over threshold"),
    "snowfall_mm": ("降雪量超阈值", "Snowfall over threshold"),
    "wind_gust_ms": ("阵风超阈值", "Gusts over threshold"),
    "wind_mean_ms": ("平均风速超阈值", "Mean wind over threshold"),
    "temperature_min_c": ("低温", "Low temperature"),
    "temperature_drop_c": ("急剧降温", "Sharp temperature drop"),
}
LEVEL_LABELS = {
    "watch": ("待核实", "watch (not yet corroborated)"),
    "routine": ("一般", "routine"),
    "blue": ("蓝色", "blue"),
    "yellow": ("黄色", "yellow"),
    "orange": ("橙色", "orange"),
    "red": ("红色", "red"),
}


def category_label(category: str) -> Label:
    service = CATALOGUE.get(category)
    if service is not None:  # its name reads "倒伏树木 Fallen tree"
        zh, _, en = service.name.partition(" ")
        return {"zh": zh, "en": en or zh}
    if category in EVENT_ZH:
        english = category.replace("_", " ")
        return {"zh": f"{EVENT_ZH[category]}预警", "en": f"{english.capitalize()} warning"}
    if category in METRIC_LABELS:
        zh, en = METRIC_LABELS[category]
        return {"zh": zh, "en": en}
    return {"zh": category, "en": category}


def district_label(code: str | None) -> Label | None:
    if not code:
        return None
    district = load_city().districts.get(code)
    return {"zh": district.zh, "en": district.en} if district else {"zh": code, "en": code}


def level_label(level: str) -> Label:
    zh, en = LEVEL_LABELS.get(level, (level, level))
    return {"zh": zh, "en": en}


def incident_labels(category: str, district: str | None, level: str) -> dict[str, Label | None]:
    return {
        "category": category_label(category),
        "district": district_label(district),
        "level": level_label(level),
    }

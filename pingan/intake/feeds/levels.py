"""A warning's level as its sender states it. Pure.

Structured fields first: a level/colour <parameter>, then an <eventCode> whose value
names a colour. Then the words, headline before event name: the colour the signal is
moved *to* (升级为, 降级为, 调整为, "upgraded to", ...), else the one colour the text
states; a lift (解除, "lifted", "cancelled") is read as such. A text that names several
colours and says which one it moves to nowhere gives no level: never the first colour
mentioned ("…将暴雪黄色预警信号升级为橙色" is orange). Last, the CAP severity as the CMA
profile maps it onto the four colours.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from pingan.vocabulary import WARNING_LEVEL_WORDS

# The CMA CAP profile maps signal colours onto CAP severity this way.
SEVERITY_LEVEL = {"Minor": "blue", "Moderate": "yellow", "Severe": "orange", "Extreme": "red"}
# <parameter> names that carry the signal's level.
LEVEL_PARAMETERS = ("level", "cma_level", "colour", "color", "signal_level", "预警级别", "预警颜色")

# A colour word; English ones whole ("red" is not in "expected"; BLIZZARD_RED is red).
_COLOUR = "|".join(
    rf"(?<![a-z]){re.escape(w)}(?![a-z])" if w.isascii() else re.escape(w)
    for w in sorted(WARNING_LEVEL_WORDS, key=len, reverse=True)
)
COLOUR = re.compile(_COLOUR, re.IGNORECASE)
# "…升级为橙色", "降级为黄色", "调整为暴雪蓝色…", "upgraded from yellow to orange"
TRANSITION = re.compile(
    rf"(?:升级|降级|调整|提升|提高|降低|变更|更改|改|升|降)(?:为|至|成|到)[^，。；,.;!?！？]{{0,10}}?({_COLOUR})"
    rf"|(?:upgraded|downgraded|raised|lowered|adjusted|changed|escalated|reduced|elevated)"
    rf"\s+(?:[\w-]+\s+){{0,5}}?to\s+(?:(?:an?|the)\s+)?({_COLOUR})",
    re.IGNORECASE,
)
LIFT = re.compile(
    r"解除|(?<![a-z])(?:lift(?:ed|s)?|cancel(?:l?ed|s)?|revoked?|withdrawn)(?![a-z])",
    re.IGNORECASE,
)
_CLAUSES = re.compile(r"[，。；;!?！？\n]|[,.](?=\s|$)")


@dataclass(frozen=True)
class LevelReading:
    level: str | None  # blue, yellow, orange, red; None when nothing says
    source: str  # where it was read: "parameter level", "eventCode", "headline", ...
    lifted: bool = False  # the text lifts (cancels) the signal


NOTHING = LevelReading(None, "")


def _colours(text: str) -> list[str]:
    return [WARNING_LEVEL_WORDS[m.group(0).lower()] for m in COLOUR.finditer(text)]


def _one(levels: Iterable[str]) -> str | None:
    distinct = set(levels)
    return distinct.pop() if len(distinct) == 1 else None


def read_text(text: str, source: str = "text") -> LevelReading:
    """The level a sentence states: the target of its last transition, else the one
    colour its non-lifting clauses name; a text that only lifts is `lifted` (at the
    colour it lifts, when it names one)."""
    targets = [next(g for g in m.groups() if g) for m in TRANSITION.finditer(text)]
    if targets:
        return LevelReading(WARNING_LEVEL_WORDS[targets[-1].lower()], source)
    stated: list[str] = []
    lifted: list[str] = []
    lifts = False
    for clause in _CLAUSES.split(text):
        lift = LIFT.search(clause)
        if lift is None:
            stated.extend(_colours(clause))
            continue
        lifts = True
        # 解除 names what it lifts after it; English ("yellow warning lifted") anywhere.
        at = lift.start() if lift.group(0) == "解除" else 0
        stated.extend(_colours(clause[:at]))
        lifted.extend(_colours(clause[at:]))
    if stated:
        level = _one(stated)
        return LevelReading(level, source) if level else NOTHING
    if lifts:
        return LevelReading(_one(lifted), source, lifted=True)
    return NOTHING


def read_level(
    parameters: Iterable[tuple[str, str]],
    event_codes: Iterable[tuple[str, str]],
    headline: str,
    event: str,
    severity: str,
) -> LevelReading:
    """The level of one CAP <info>, from the most structured field that states one;
    `lifted` when its headline (or, lacking one, its event name) lifts the signal."""
    words = [read_text(headline, "headline"), read_text(event, "event")]
    lifted = next((w.lifted for w in words if w.level or w.lifted), False)
    params = [(name.strip().lower(), value) for name, value in parameters]
    for wanted in LEVEL_PARAMETERS:
        for name, value in params:
            if name == wanted and (level := read_text(value).level):
                return LevelReading(level, f"parameter {name}", lifted)
    for name, value in event_codes:
        if level := read_text(value).level:
            return LevelReading(level, f"eventCode {name}".strip(), lifted)
    for reading in words:
        if reading.level:
            return LevelReading(reading.level, reading.source, lifted)
    level = SEVERITY_LEVEL.get(severity)
    return LevelReading(level, "severity" if level else "", lifted)

"""Which service a free-text hotline report is about (Chinese or English). Pure and
explainable: weighted cue words per category; the decision lists the words that
decided it. Below MIN_CONFIDENCE the report goes to a dispatcher's review queue
instead of being guessed.

Cues are the bureau's vocabulary, including common colloquial forms and typos seen in
hotline transcripts (树到了 for 树倒了, 路等 for 路灯)."""

from __future__ import annotations

import re
from dataclasses import dataclass

MIN_CONFIDENCE = 0.6
MIN_SCORE = 1.0

# category -> (cue, weight). Longer cues are matched first and consume their text, so
# 下水井盖 counts for manhole, not also for waterlogging via 下水.
CUES: dict[str, tuple[tuple[str, float], ...]] = {
    "fallen_tree": (
        ("倒伏", 2.5),
        ("树倒", 3),
        ("树到", 2.5),
        ("倒了一棵", 2.5),
        ("大树", 2),
        ("树枝", 2.5),
        ("断枝", 3),
        ("树干", 2.5),
        ("枝杈", 2.5),
        ("树杈", 2.5),
        ("刮倒", 2),
        ("压断", 1.5),
        ("砸", 1),
        ("梧桐", 1.5),
        ("杨树", 1.5),
        ("柳树", 1.5),
        ("行道树", 2.5),
        ("树", 1),
        ("fallen tree", 3),
        ("tree", 2),
        ("branch", 2.5),
    ),
    "waterlogging": (
        ("积水", 3),
        ("内涝", 3),
        ("淹", 2.5),
        ("涝", 2),
        ("水深", 2),
        ("没过", 2),
        ("排水", 1.5),
        ("下水道", 2),
        ("冒水", 2.5),
        ("蹚水", 2.5),
        ("趟水", 2.5),
        ("熄火", 1.5),
        ("雨水", 1.5),
        ("漫", 1.5),
        ("水漫", 2),
        ("汪着水", 2.5),
        ("flood", 3),
        ("water", 1.5),
    ),
    "snow_ice": (
        ("结冰", 3),
        ("积雪", 3),
        ("冰", 2),
        ("雪", 2),
        ("打滑", 2.5),
        ("路滑", 2.5),
        ("溜冰", 2),
        ("冻", 1.5),
        ("融雪", 2),
        ("滑倒", 2),
        ("出溜", 2),
        ("icy", 3),
        ("ice", 2.5),
        ("snow", 2.5),
        ("slippery", 2.5),
    ),
    "manhole": (
        ("井盖", 3.5),
        ("窨井", 3.5),
        ("下水井", 3),
        ("井口", 3),
        ("井圈", 3),
        ("井盖子", 3),
        ("雨水篦子", 3),
        ("篦子", 2.5),
        ("井", 1.5),
        ("窟窿", 1.5),
        ("掉进去", 1.5),
        ("manhole", 3.5),
        ("drain cover", 3),
    ),
    "streetlight": (
        ("路灯", 3.5),
        ("路等", 2.5),
        ("灯不亮", 3),
        ("灯坏", 3),
        ("灯灭", 2.5),
        ("黑灯", 2.5),
        ("黑乎乎", 1.5),
        ("一片黑", 2),
        ("灯杆", 3),
        ("照明", 2),
        ("闪", 1),
        ("灯", 1.5),
        ("streetlight", 3.5),
        ("street light", 3.5),
        ("lamp", 2.5),
        ("dark", 1),
    ),
}


@dataclass(frozen=True)
class Classification:
    category: str  # a service code, or "other"
    confidence: float
    words: tuple[str, ...]  # the cues that decided it
    scores: dict[str, float]

    @property
    def needs_review(self) -> bool:
        return self.category == "other" or self.confidence < MIN_CONFIDENCE


def classify(text: str) -> Classification:
    remaining = text.lower()
    scores = dict.fromkeys(CUES, 0.0)
    found: dict[str, list[str]] = {c: [] for c in CUES}
    cues = sorted(
        ((cue, weight, cat) for cat, items in CUES.items() for cue, weight in items),
        key=lambda c: -len(c[0]),
    )
    for cue, weight, category in cues:
        count = remaining.count(cue)
        if count:
            scores[category] += weight * (1 + 0.25 * (count - 1))
            found[category].append(cue)
            remaining = remaining.replace(cue, " " * len(cue))
    total = sum(scores.values())
    best = max(scores, key=lambda c: scores[c])
    if scores[best] < MIN_SCORE:
        return Classification("other", 0.0, (), scores)
    confidence = round(scores[best] / total, 3)
    return Classification(best, confidence, tuple(found[best]), scores)


_WS = re.compile(r"\s+")


def normalise_text(text: str) -> str:
    """What duplicate detection compares: case and spacing do not matter."""
    return _WS.sub(" ", text).strip().lower()

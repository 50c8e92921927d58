"""Categorisation of free hotline text: >= 90% on the labelled set (printed as a
confusion matrix), explainable, and unsure cases go to review."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from pingan.intake.classify import classify
from pingan.intake.location import district_at, find_place, locate

LABELLED = Path(__file__).parent.parent / "data" / "hotline" / "labelled.tsv"
ROWS = [
    line.rstrip("\n").split("\t")
    for line in LABELLED.read_text(encoding="utf-8").splitlines()
    if line.strip() and not line.startswith("#")
]
CATEGORIES = ["fallen_tree", "waterlogging", "snow_ice", "manhole", "streetlight", "other"]


def test_labelled_set_accuracy_with_confusion_matrix() -> None:
    assert len(ROWS) >= 200
    confusion: Counter[tuple[str, str]] = Counter()
    for label, text in ROWS:
        confusion[(label, classify(text).category)] += 1
    correct = sum(n for (label, got), n in confusion.items() if label == got)
    accuracy = correct / len(ROWS)
    width = max(len(c) for c in CATEGORIES)
    print(f"\nconfusion matrix (rows: label, columns: predicted), accuracy {accuracy:.1%}")
    print(" " * (width + 1) + " ".join(f"{c[:6]:>6}" for c in CATEGORIES))
    for label in CATEGORIES:
        print(
            f"{label:>{width}} " + " ".join(f"{confusion[(label, got)]:>6}" for got in CATEGORIES)
        )
    assert accuracy >= 0.90


@pytest.mark.parametrize(
    ("text", "category", "word"),
    [
        ("人民路有个井盖没了，很危险", "manhole", "井盖"),
        ("树到了！！交通路这边", "fallen_tree", "树到"),
        ("小区门口路等坏了", "streetlight", "路等"),
        ("the bridge is icy", "snow_ice", "icy"),
    ],
)
def test_decision_names_the_words(text: str, category: str, word: str) -> None:
    decision = classify(text)
    assert decision.category == category and word in decision.words
    assert not decision.needs_review


@pytest.mark.parametrize("text", ["请问办居住证去哪里", "路面结冰了，路灯下面特别滑看不清", ""])
def test_unsure_or_unrelated_goes_to_review(text: str) -> None:
    assert classify(text).needs_review


def test_locations() -> None:
    assert district_at(33.5712, 114.0153) == "yuanhui"
    assert district_at(39.9, 116.4) is None  # Beijing is outside the service area
    assert find_place("沙河大桥桥面结冰").name == "沙河大桥"  # the longest name wins
    spot = locate(None, None, "召陵区 滨河路 沙河桥东头")
    assert (spot.district, spot.segment, spot.matched) == ("shaoling", "shaoling-01", "滨河路")
    assert locate(None, None, "郾城区某小区").district == "yancheng"
    assert locate(None, None, "不知道在哪").district is None
    assert locate(33.5905, 114.0112).segment == "yancheng-01"

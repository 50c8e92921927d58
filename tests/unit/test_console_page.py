"""The console page as shipped: it asks in its own <dialog>, never with the browser's
prompt, alert or confirm; its HTML, before the script puts in the chosen language,
is already Chinese only (apart from what is marked translate="no"); and why a report
waits for review reads in each language."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from pingan.intake.accept import place
from pingan.intake.reports import ReportDraft
from pingan.labels import review_label
from pingan.settings import PACKAGE_ROOT

CONSOLE = PACKAGE_ROOT / "console"
LATIN_WORD = re.compile(r"[A-Za-z]{2,}")


@pytest.mark.parametrize("name", ["app.js", "map.js"])
def test_no_browser_dialogs(name: str) -> None:
    code = (CONSOLE / name).read_text(encoding="utf-8")
    called = re.findall(r"(?<![\w.$])(?:window\s*\.\s*)?(prompt|alert|confirm)\s*\(", code)
    assert called == []


class _Text(HTMLParser):
    """The text a reader sees in the page as served (not scripts, styles, comments,
    nor what is marked translate="no")."""

    VOID = frozenset({"meta", "link", "input", "br", "img", "hr"})

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[str, bool]] = []
        self.seen: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        for shown in ("placeholder", "title", "aria-label"):
            if found.get(shown):
                self.seen.append(str(found[shown]))
        if tag in self.VOID:
            return
        hidden = tag in ("script", "style") or found.get("translate") == "no"
        self.stack.append((tag, hidden or any(h for _, h in self.stack)))

    def handle_endtag(self, tag: str) -> None:
        while self.stack:
            if self.stack.pop()[0] == tag:
                break

    def handle_data(self, data: str) -> None:
        if not any(h for _, h in self.stack):
            self.seen.append(data)


def test_the_page_as_served_is_in_one_language() -> None:
    page = _Text()
    page.feed((CONSOLE / "index.html").read_text(encoding="utf-8").replace("{{user}}", "alice"))
    text = " ".join(page.seen)
    assert "事件" in text and "alice" not in text  # the page's words; no login name
    assert LATIN_WORD.findall(text) == []


def test_why_a_report_waits_in_each_language() -> None:
    nowhere = place(ReportDraft("fallen_tree", None, None, None, "树倒了", None, {}))
    assert nowhere.review_reason is not None
    assert review_label(nowhere.review_reason, None)["zh"] == (
        "位置不明：没有坐标，也没有认得出的道路或地标"
    )
    unsure = review_label(
        "category unsure: waterlogging at confidence 0.41 (积水)",
        {"category": "waterlogging", "confidence": 0.41, "words": ["积水"]},
    )
    assert unsure == {
        "zh": "类别不确定：可能是道路积水，把握41%（线索：积水）",
        "en": "category unsure: perhaps Flooded road, 41% sure (cues: 积水)",
    }
    assert review_label("something else", None) == {"zh": "something else", "en": "something else"}

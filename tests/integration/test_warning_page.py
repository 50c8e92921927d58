"""The public page a citizen's WeChat card links to: the whole warning, readable by
anyone, for published warnings only, escaped, under the site's CSP (no script)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from alerts import citizen_warnings as cw
from pingan.http.headers import CONTENT_SECURITY_POLICY
from pingan.store import Store
from playbooks.registry import PlaybookRegistry
from tests.conftest import NOW
from tests.integration.live_app import LiveApp, live_app


@pytest.fixture
def app(store: Store, registry: PlaybookRegistry, tmp_path: Path) -> Iterator[LiveApp]:
    with live_app(store, registry, tmp_path) as running:
        yield running


def sent_warning(store: Store) -> int:
    draft = cw.create_draft(
        store, "blizzard", "orange", ["yuanhui", "yancheng"], "blizzard-orange", ["wechat"],
        "alice", NOW,
    )  # fmt: skip
    cw.approve(store, int(draft["id"]), "bob", NOW)
    return int(draft["id"])


def test_a_sent_warning_is_public_whole_and_escaped(app: LiveApp, store: Store) -> None:
    warning_id = sent_warning(store)
    page = app.http.get(f"/warnings/{warning_id}")  # no token, no session
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert page.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    html = page.text
    assert "<h1>暴雪橙色预警</h1>" in html
    assert "区域 Area: 源汇区、郾城区" in html
    assert "发布 Issued: 2026年11月27日 16:00" in html
    assert (
        "【漯河城管】源汇区、郾城区暴雪橙色预警。减少外出，注意防滑，车辆慢行；"
        "桥梁、涵洞路段已优先除雪。求助请拨12345。"
    ) in html
    assert "Snowstorm orange warning for Yuanhui District, Yancheng District" in html
    assert "<script" not in html

    correction = cw.correct(
        store, warning_id, "Cancel", "【漯河城管】暴雪预警解除<script>alert(1)</script>", "bob", NOW
    )
    original = app.http.get(f"/warnings/{warning_id}").text
    assert f'此预警已解除</b>：<a href="/warnings/{correction}">' in original
    cancel = app.http.get(f"/warnings/{correction}").text
    assert "<h1>暴雪橙色预警（解除）</h1>" in cancel
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in cancel and "<script" not in cancel


@pytest.mark.parametrize("raw", ["999", "abc", "%3Cscript%3E", "9" * 40, "%D9%A3"])
def test_no_page_for_drafts_or_strangers(app: LiveApp, store: Store, raw: str) -> None:
    draft = cw.create_draft(store, "gale", "blue", ["yuanhui"], "gale-blue", ["sms"], "alice", NOW)
    for path in (f"/warnings/{draft['id']}", f"/warnings/{raw}"):
        page = app.http.get(path)
        assert page.status_code == 404, path
        assert "没有这条预警" in page.text

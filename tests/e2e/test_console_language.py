"""The console in one language at a time, in a real headless Chromium: in Chinese (the
default) the board and an incident's detail show no English word, the crew's reason,
the trail and the statuses included; the English switch holds across a reload; resolve,
merge and split ask in the page's dialog (window.prompt, alert and confirm throw here)
and bad input gets an error naming what is wrong; a new red incident and an overdue
acknowledgement sound and show a notification (seen through the page's hook,
window.pinganAlerts and the "pingan:alert" event), and the mute silences the sound.
Screenshots go to test-artifacts/console/."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import update

from pingan.store.schema import assignments
from tests.conftest import ROSTER
from tests.e2e.harness import Stack, wait_for
from tests.e2e.test_console_browser import PASSWORDS, make_people, shot

pytestmark = pytest.mark.e2e

# The rendered text (innerText: what is on screen, hidden tabs and closed <details>
# left out) with what is marked translate="no" (shown as written: a login name, the
# switch naming the other language) taken away; then no run of two Latin letters.
RENDERED_WORDS = """() => {
  const hide = document.createElement("style");
  hide.textContent = '[translate="no"] { display: none !important; }';
  document.head.appendChild(hide);
  const text = document.body.innerText;
  const placeholders = [...document.querySelectorAll("[placeholder]")]
    .filter((el) => el.checkVisibility()).map((el) => el.placeholder);
  hide.remove();
  return [text, ...placeholders].join("\\n");
}"""
AS_WRITTEN = """() => [...document.querySelectorAll('[translate="no"]')]
  .filter((el) => el.checkVisibility()).map((el) => el.innerText.trim())"""
LATIN_WORD = re.compile(r"[A-Za-z]{2,}")
# Anything here makes the test fail at once: the console asks in its own dialog.
NO_BROWSER_DIALOGS = """
  window.__forbidden = [];
  for (const name of ["prompt", "alert", "confirm"]) {
    window[name] = (...args) => {
      window.__forbidden.push(name);
      throw new Error(`window.${name} is not to be used by the console`);
    };
  }
  window.__alertEvents = [];
  document.addEventListener("pingan:alert", (e) => window.__alertEvents.push(e.detail));
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    data = tmp_path_factory.mktemp("console-language") / "data"
    make_people(data)
    running = Stack(data, {"PINGAN_ROSTER_FILE": str(ROSTER)})
    yield running
    running.stop()


def open_console(browser: Browser, stack: Stack, **context: Any) -> Page:
    page = browser.new_context(viewport={"width": 1366, "height": 900}, **context).new_page()
    page.add_init_script(NO_BROWSER_DIALOGS)
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(f"{stack.base_url}/console/")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", PASSWORDS["alice"])
    page.click("button[type=submit]")
    expect(page.locator("#user")).to_have_text("alice")
    page.problems = problems  # type: ignore[attr-defined]
    return page


def english_words(page: Page) -> list[str]:
    return LATIN_WORD.findall(page.evaluate(RENDERED_WORDS))


def no_trouble(page: Page) -> None:
    assert page.evaluate("window.__forbidden") == []
    assert page.problems == []  # type: ignore[attr-defined]


def dialog_error(page: Page, value: str, name: str, expected: str) -> None:
    page.fill(f"#dialog [name={name}]", value)
    page.click("#dialogok")
    expect(page.locator("#dialogerror")).to_have_text(expected)
    expect(page.locator("#dialog")).to_be_visible()


def test_in_chinese_the_board_and_detail_show_no_english_word(
    stack: Stack, browser: Browser
) -> None:
    reply = stack.report(
        lat=33.5712, long=114.0153, description="人民路大树倒了，挡住车道", phone="13800138001"
    )
    assert reply.status_code == 200, reply.text
    page = open_console(browser, stack)
    row = page.locator("tr[data-incident]").first
    expect(row).to_contain_text("园林抢险近班：待接单", timeout=20_000)
    row.click()
    detail = page.locator("#detail")
    expect(detail).to_contain_text("选派理由：负责该路段（人民路）：距驻地0.1公里")
    expect(detail.locator("li[data-action='crew.assignment.queued']")).to_contain_text(
        "派单短信待发"
    )
    # A person's part in the trail: alice acknowledges for the crew, then resolves.
    detail.locator("button[data-do=ack]").click()
    expect(row).to_contain_text("园林抢险近班：已接单", timeout=20_000)
    expect(detail.locator("li[data-action='assignment.acknowledged']")).to_contain_text(
        "alice（代班组操作） 班组接单 任务1·园林抢险近班"
    )
    assert english_words(page) == [], page.evaluate(RENDERED_WORDS)
    assert sorted(set(page.evaluate(AS_WRITTEN))) == ["English", "alice"]
    shot(page, "20-zh-board-and-detail")
    # The page's own words: the same keys in each language, the Chinese with no code.
    zh, en = page.evaluate("() => [UI.zh, UI.en].map((words) => Object.keys(words).sort())")
    assert zh == en
    own = page.evaluate(
        "() => Object.values(UI.zh).filter((w) => typeof w === 'string').join('\\n')"
    )
    assert LATIN_WORD.findall(own) == []

    detail.locator("button[data-do=resolve]").click()
    expect(page.locator("#dialog")).to_be_visible()
    assert english_words(page) == [], page.evaluate(RENDERED_WORDS)  # the dialog too
    page.fill("#dialog textarea[name=reason]", "树已移走，道路畅通")
    page.click("#dialogok")
    expect(page.locator("#dialog")).to_be_hidden()
    expect(row.locator(".status")).to_have_text("已办结", timeout=20_000)
    expect(detail.locator("li[data-action='incident.resolved']")).to_contain_text(
        "alice 办结 「树已移走，道路畅通」"
    )
    assert english_words(page) == [], page.evaluate(RENDERED_WORDS)
    shot(page, "21-zh-resolved")

    # English, one language too, and it holds across a reload.
    page.click("#lang")
    expect(detail).to_contain_text("Why this crew: owns road segment yuanhui-01 (人民路)")
    expect(row).to_contain_text("Tree crew near: cancelled")  # stood down when resolved
    expect(row.locator(".status")).to_have_text("resolved")
    expect(detail.locator("li[data-action='incident.resolved']")).to_contain_text("resolved")
    page.reload()
    expect(page.locator("#lang")).to_have_text("中文")
    expect(page.locator("button[data-tab=board]")).to_have_text("Incidents")
    expect(page.locator("tr[data-incident] .status").first).to_have_text("resolved")
    shot(page, "22-en-after-reload")
    page.click("#lang")
    expect(page.locator("button[data-tab=board]")).to_have_text("事件")
    no_trouble(page)
    page.context.close()


def test_resolve_merge_and_split_ask_in_the_page(stack: Stack, browser: Browser) -> None:
    for description in ("黄河路大树倒了", "黄河路有棵树倒在路上"):  # one tree, two callers
        reply = stack.report(lat=33.5745, long=114.0190, description=description)
        assert reply.status_code == 200, reply.text
    incident = wait_for(
        lambda: next(
            (
                i
                for i in stack.incidents()
                if i["status"] != "resolved" and len(stack.incident(i["id"])["reports"]) == 2
            ),
            None,
        ),
        what="one incident with both reports",
    )
    page = open_console(browser, stack)
    page.locator(f"tr[data-incident='{incident['id']}']").click()
    detail = page.locator("#detail")
    expect(detail.locator("[data-report]")).to_have_count(2)

    detail.locator("button[data-do=merge]").click()
    expect(page.locator("#dialogtitle")).to_have_text(f"把另一事件并入事件 #{incident['id']}")
    dialog_error(page, "abc", "other", "请填写事件号：一个正整数")
    dialog_error(page, str(incident["id"]), "other", "不能把事件并入它自己")
    page.fill("#dialog [name=other]", "999999")
    page.click("#dialogok")  # the server refuses: said in Chinese, its words folded away
    expect(page.locator("#dialogerror")).to_contain_text("找不到要操作的对象")
    expect(page.locator("#dialogerror details")).to_contain_text("999999")
    assert english_words(page) == []
    shot(page, "23-merge-refused")
    page.click("#dialogcancel")
    expect(page.locator("#dialog")).to_be_hidden()

    detail.locator("button[data-do=split]").click()
    page.click("#dialogok")
    expect(page.locator("#dialogerror")).to_have_text("请至少勾选一份报告")
    page.locator("#dialog input[name=reports]").nth(0).check()
    page.locator("#dialog input[name=reports]").nth(1).check()
    page.click("#dialogok")
    expect(page.locator("#dialogerror")).to_have_text("至少要留一份报告在原事件上")
    page.locator("#dialog input[name=reports]").nth(0).uncheck()
    page.click("#dialogok")
    expect(page.locator("#dialog")).to_be_hidden()
    expect(detail.locator("[data-report]")).to_have_count(1)
    expect(detail.locator("li[data-action='incident.split']")).to_contain_text("拆出为事件")

    detail.locator("button[data-do=resolve]").click()
    page.click("#dialogok")
    expect(page.locator("#dialogerror")).to_have_text("请填写说明：不能为空")
    page.fill("#dialog textarea[name=reason]", "x" * 501)
    page.click("#dialogok")
    expect(page.locator("#dialogerror")).to_have_text("说明太长：最多500个字")
    page.click("#dialogcancel")
    no_trouble(page)
    page.context.close()


def test_a_new_red_incident_and_an_overdue_ack_sound_and_notify(
    stack: Stack, browser: Browser
) -> None:
    page = open_console(browser, stack, permissions=["notifications"])
    # The person has used the page (sound may play) and looks at another tab: the
    # board is watched all the same.
    page.click("button[data-tab=crews]")
    expect(page.locator("#mute")).to_have_text("声音：开")
    expires = (datetime.now(UTC) + timedelta(hours=6)).isoformat()
    warning = stack.http.post(
        "/api/warnings",
        headers=stack.auth,
        json={
            "id": "LH-RED-1",
            "event": "大风",
            "level": "红色",
            "districts": ["yuanhui"],
            "expires": expires,
        },
    )
    assert warning.status_code < 300, warning.text
    page.wait_for_function(
        "() => window.pinganAlerts.some((a) => a.kind === 'incident' && a.level === 'red')",
        timeout=30_000,
    )
    alert = page.evaluate("window.pinganAlerts.find((a) => a.kind === 'incident')")
    assert alert["sound"] == "played" and alert["notification"] == "shown", alert
    assert alert["text"].startswith("新的红色事件 #") and "源汇区" in alert["text"], alert
    expect(page.locator("#alertbar")).to_contain_text("新的红色事件")
    expect(page.locator("#crews")).to_be_visible()
    page.click("#alertopen")  # the bar opens the incident
    expect(page.locator("#detail h3")).to_contain_text(f"#{alert['incident']} 大风预警 · 红色")
    assert page.evaluate("window.__alertEvents.length") == 1  # the event, as well
    shot(page, "24-red-incident-alarm")

    page.click("#mute")  # muted, and it stays muted
    expect(page.locator("#mute")).to_have_text("声音：关")
    # An acknowledgement past its deadline (the escalation timer, minutes away, has not
    # moved it on yet): the page sees it on its next look at the board.
    reply = stack.report(service_code="manhole", lat=33.5700, long=114.0100, description="井盖丢了")
    assert reply.status_code == 200, reply.text
    waiting = wait_for(
        lambda: next(
            (
                (i["id"], a["id"])
                for i in stack.incidents()
                if i["category"] == "manhole"
                for a in stack.incident(i["id"])["assignments"]
                if a["state"] == "assigned"
            ),
            None,
        ),
        what="a manhole crew waiting to acknowledge",
    )
    with stack.store.transaction() as conn:
        conn.execute(
            update(assignments)
            .where(assignments.c.id == waiting[1])
            .values(ack_due_at=datetime.now(UTC) - timedelta(minutes=1))
        )
    page.click("button[data-tab=board]")
    page.wait_for_function("() => window.pinganAlerts.some((a) => a.kind === 'overdue')")
    [overdue] = page.evaluate("window.pinganAlerts.filter((a) => a.kind === 'overdue')")
    assert (overdue["incident"], overdue["assignment"]) == waiting
    assert (overdue["sound"], overdue["notification"]) == ("muted", "shown")
    assert overdue["text"] == f"事件 #{waiting[0]}：井盖抢修班超时未接单"
    expect(page.locator(f"tr[data-incident='{waiting[0]}']")).to_have_class("state-late")
    expect(page.locator("#alertbar")).to_contain_text("超时未接单")
    shot(page, "25-overdue-ack-alarm-muted")

    page.reload()
    expect(page.locator("#mute")).to_have_text("声音：关")
    page.click("#mute")
    expect(page.locator("#mute")).to_have_text("声音：开")
    no_trouble(page)
    page.context.close()

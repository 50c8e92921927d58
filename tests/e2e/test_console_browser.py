"""The console in a real headless Chromium (Debian's, driven by Playwright): log in; a
report POSTed through Open311 appears on the board without a reload; a dispatcher
reassigns the crew; the new crew acknowledges through its signed link on a phone-sized
page and the row turns green live; a warning drafted by one user is approved by another
and its delivery count moves; a dispatcher looks up what one caller was sent. Screenshots
of each step go to test-artifacts/console/."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from pingan.settings import PROJECT_ROOT
from pingan.store.schema import local_messages, sends
from tests.conftest import ROSTER
from tests.e2e.harness import Stack, wait_for

pytestmark = pytest.mark.e2e
ARTIFACTS = PROJECT_ROOT / "test-artifacts" / "console"
PASSWORDS = {"alice": "alice-password-1", "bob": "bob-password-22", "vera": "vera-password-3"}
PEOPLE = """phone,openid,home_district,work_district,language,channels,consent_source,consent_at
13900000001,,yuanhui,,zh,sms,hotline,
13900000002,,yuanhui,,zh,sms,hotline,
13900000003,,yuanhui,,zh,sms,hotline,
"""


def pingan_cli(data_dir: Path, *args: str, stdin: str = "") -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PINGAN_")}
    env.update(PINGAN_DATA_DIR=str(data_dir), PINGAN_CONFIG=str(data_dir / "absent.toml"))
    done = subprocess.run(
        [sys.executable, "-m", "pingan", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode in (0, 1), done.stderr


def make_people(data_dir: Path) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    for name, role in (("alice", "dispatcher"), ("bob", "dispatcher"), ("vera", "viewer")):
        pingan_cli(data_dir, "users", "add", name, "--role", role, stdin=PASSWORDS[name] + "\n")
    (data_dir / "people.csv").write_text(PEOPLE, encoding="utf-8")
    pingan_cli(data_dir, "subscribers", "import", str(data_dir / "people.csv"))


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    data = tmp_path_factory.mktemp("console") / "data"
    make_people(data)
    running = Stack(data, {"PINGAN_ROSTER_FILE": str(ROSTER), "PINGAN_APPROVAL_THRESHOLD": "2"})
    yield running
    running.stop()


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def login(browser: Browser, stack: Stack, user: str) -> Page:
    page = browser.new_context(viewport={"width": 1366, "height": 768}).new_page()
    page.goto(f"{stack.base_url}/console/")
    expect(page).to_have_url(re.compile(r"/login"))
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", PASSWORDS[user])
    page.click("button[type=submit]")
    expect(page.locator("#user")).to_have_text(user)
    return page


def test_the_duty_room_flow(stack: Stack, browser: Browser) -> None:
    alice = login(browser, stack, "alice")
    shot(alice, "01-logged-in")
    alice.evaluate("window.__sameDocument = true")

    assert stack.report(lat=33.5712, long=114.0153, description="人民路大树倒了").status_code == 200
    row = alice.locator("tr[data-incident]").first
    expect(row).to_contain_text("园林抢险近班：待接单", timeout=20_000)
    assert alice.evaluate("window.__sameDocument") is True  # no reload happened
    shot(alice, "02-report-on-the-board")

    row.click()
    expect(alice.locator("#detail")).to_contain_text("选派理由：负责该路段（人民路）")
    alice.click("#detail button[data-do=reassign]")
    expect(row).to_contain_text("园林抢险远班：待接单", timeout=20_000)
    expect(row).to_contain_text("园林抢险近班：已取消")
    shot(alice, "03-crew-dispatched")

    def far_link() -> str | None:
        with stack.store.read() as conn:
            for body in conn.execute(
                select(local_messages.c.body).where(local_messages.c.recipient == "+8610000000102")
            ).scalars():
                found = re.search(r"(http://\S+/c/\S+)", body)
                if found:
                    return found.group(1)
        return None

    link = wait_for(far_link, what="the new crew's SMS with its link")
    phone = browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    ).new_page()
    phone.goto(link)
    expect(phone.locator("#state")).to_have_text("待接单")
    accept = phone.get_by_role("button", name="接单 Accept")
    box = accept.bounding_box()
    assert box is not None and box["width"] > 300  # a thumb-sized button on a phone
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scroll
    # The map opens on Android and iPhone alike: a web link (Amap's marker URI, the
    # report's WGS-84 point as GCJ-02), in a new tab, sending no referrer (the page's
    # own URL is the crew's credential).
    map_link = phone.locator("a#map")
    expect(map_link).to_have_attribute(
        "href", re.compile(r"^https://uri\.amap\.com/marker\?position=114\.021221,33\.569705&")
    )
    expect(map_link).to_have_attribute("rel", "noopener noreferrer")
    shot(phone, "04-crew-page-390x844")
    accept.click()
    expect(phone.locator("#state")).to_have_text("已接单")
    shot(phone, "05-crew-acknowledged")
    expect(row).to_have_class(re.compile(r"state-ok"), timeout=20_000)  # green, live
    shot(alice, "06-row-green-live")

    alice.click("button[data-tab=warnings]")
    alice.select_option("#draftform select[name=event]", "blizzard")
    alice.select_option("#draftform select[name=level]", "orange")
    alice.click("#draftform button[type=submit]")  # no district ticked: said, not sent
    expect(alice.locator("#drafterror")).to_have_text("请至少选一个区域")
    alice.check("#draftform input[name=districts][value=yuanhui]")
    expect(alice.locator("#draftform input[name=channels][value=sms]")).to_be_checked()
    alice.click("#draftform button[type=submit]")
    draft = alice.locator("tr[data-warning]").first
    expect(draft.locator(".wstatus")).to_have_text("待审批")
    draft.locator("button[data-approve]").click()  # the two-person rule refuses, in words
    expect(alice.locator("#dialog")).to_contain_text("两人规则：起草人不能审批自己起草的预警")
    alice.click("#dialogcancel")
    expect(draft.locator(".wstatus")).to_have_attribute("data-status", "draft")
    shot(alice, "07-warning-drafted")

    bob = login(browser, stack, "bob")
    bob.click("button[data-tab=warnings]")
    bob.locator("tr[data-warning] button[data-approve]").first.click()
    expect(bob.locator("tr[data-warning] .wstatus").first).to_have_text("已发送")
    expect(draft.locator(".wsent")).to_have_text("3", timeout=30_000)  # stats move, live
    shot(alice, "08-warning-approved-and-sent")
    shot(bob, "09-approver-view")
    for page in (alice, bob, phone):
        page.context.close()


def test_viewer_sees_but_cannot_act(stack: Stack, browser: Browser) -> None:
    vera = login(browser, stack, "vera")
    vera.locator("tr[data-incident]").first.click()
    vera.click("#detail button[data-do=dispatch]")
    refusal = vera.locator("#dialog")
    expect(refusal).to_contain_text("当前角色无权执行此操作")  # the page's dialog, in words
    expect(refusal.locator("details")).to_contain_text("role viewer may not do this")
    vera.click("#dialogcancel")
    expect(vera.locator("button[data-tab=messages]")).to_be_hidden()  # not for viewers
    vera.click("button[data-tab=health]")
    expect(vera.locator("#healthtable")).to_contain_text("流处理进程")  # the worker
    # Backpressure a dispatcher can read in a storm: what waits, and for how long.
    expect(vera.locator("#healthtable tr.backlog")).to_have_count(4)
    expect(vera.locator("#healthtable")).to_contain_text("未归案报告")
    expect(vera.locator("#healthtable")).to_contain_text("待送达消息")
    shot(vera, "10-viewer-health")
    vera.context.close()


def test_a_callers_message_history(stack: Stack, browser: Browser) -> None:
    """A citizen reports a dark street light and gives a number; the dispatcher types
    that number as the caller spelt it and sees the receipt the citizen was sent."""
    caller = "+8613800138000"
    answer = stack.report(
        service_code="streetlight",
        lat=33.5870,
        long=114.0060,
        description="黄河路路灯不亮",
        phone=caller,
    )
    assert answer.status_code == 200, answer.text

    def receipt_sent() -> bool:
        with stack.store.read() as conn:
            return bool(conn.execute(select(sends.c.id).where(sends.c.recipient == caller)).all())

    wait_for(receipt_sent, what="the caller's receipt in the ledger")
    alice = login(browser, stack, "alice")
    alice.click("button[data-tab=messages]")
    alice.fill("#historyform input[name=phone]", "138 0013 8000")
    alice.click("#historyform button[type=submit]")
    row = alice.locator("#historytable tbody tr").first
    expect(row.locator(".mkind")).to_have_text("受理回执")
    expect(row.locator(".mstatus")).to_have_text("已发出")
    expect(row.locator(".mtext")).to_contain_text("您反映的路灯故障已受理")
    expect(alice.locator("#historyempty")).to_be_hidden()
    shot(alice, "11-message-history")
    alice.context.close()

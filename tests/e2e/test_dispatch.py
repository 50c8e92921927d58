"""Crew dispatch on the embedded stack, with a controllable clock instead of sleeps:
a silent crew is replaced at its deadline and its supervisor told (in one digest);
its late accept is answered politely and assigns nobody twice; the escalation fires
exactly once even when the process is killed before the deadline; forged or expired
links and forged webhooks are refused and audited."""

from __future__ import annotations

import re
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from pingan.links import sign_link
from pingan.store.schema import assignments, audit, local_messages, staff_alerts, timers
from tests.conftest import ROSTER
from tests.e2e.harness import Stack, wait_for

pytestmark = pytest.mark.e2e
TOKEN = "e2e-twilio-token"
NEAR_PHONE, FAR_PHONE = "+8610000000101", "+8610000000102"
SUPERVISOR, DUTY = "+8610000000901", "+8610000000999"


class Clock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.set_minutes(0)

    def set_minutes(self, minutes: float) -> None:
        self.path.write_text(str(minutes * 60))


def start(tmp: Path, clock: Clock) -> Stack:
    return Stack(
        tmp / "data",
        {
            "PINGAN_ROSTER_FILE": str(ROSTER),
            "PINGAN_TWILIO_AUTH_TOKEN": TOKEN,
            "PINGAN_CLOCK_OFFSET_FILE": str(clock.path),
        },
    )


def rows(stack: Stack, table):  # type: ignore[no-untyped-def]
    with stack.store.read() as conn:
        return conn.execute(select(table).order_by(table.c.id)).all()


def messages_to(stack: Stack, phone: str) -> list[str]:
    return [m.body for m in rows(stack, local_messages) if m.recipient == phone]


def sms(stack: Stack, body: str, phone: str, token: str = TOKEN):  # type: ignore[no-untyped-def]
    url = f"{stack.base_url}/webhooks/twilio/sms"
    params = {"From": phone, "To": "+8610690000", "Body": body}
    return stack.http.post(
        url,
        data=params,
        headers={"X-Twilio-Signature": RequestValidator(token).compute_signature(url, params)},
    )


def test_silent_crew_is_replaced_supervisor_told_late_accept_refused(tmp_path: Path) -> None:
    clock = Clock(tmp_path / "clock")
    stack = start(tmp_path, clock)
    try:
        stack.report(lat=33.5712, long=114.0153, description="人民路大树倒了")
        [first] = wait_for(lambda: rows(stack, assignments), what="first assignment")
        assert first.crew_id == "tree-near" and "owns road segment yuanhui-01" in first.why
        [sms_text] = wait_for(lambda: messages_to(stack, NEAR_PHONE), what="crew SMS")
        assert f"回复“{first.id} 1”接单" in sms_text
        link = re.search(r"(http://\S+/c/\S+)", sms_text).group(1)  # type: ignore[union-attr]

        clock.set_minutes(11)  # past the 10-minute acknowledgement step
        replaced = wait_for(
            lambda: [a for a in rows(stack, assignments) if a.crew_id == "tree-far"],
            what="next crew asked",
        )
        assert replaced[0].state == "assigned"
        assert next(a for a in rows(stack, assignments) if a.id == first.id).state == "timed_out"
        [alert] = wait_for(lambda: rows(stack, staff_alerts), what="supervisor alert")
        assert alert.phone == SUPERVISOR and "已改派下一班组" in alert.text

        clock.set_minutes(14)  # the two-minute digest window has passed
        [digest] = wait_for(lambda: messages_to(stack, SUPERVISOR), what="supervisor digest")
        assert digest.startswith("【平安督办】王主任，1条待关注")

        late = sms(stack, f"{first.id} 1", NEAR_PHONE)
        assert "该任务已转派其他班组，感谢，无需处理" in late.text
        assert [a.crew_id for a in rows(stack, assignments)] == ["tree-near", "tree-far"]
        page = stack.http.get(link)
        assert page.status_code == 200 and "已转派" in page.text  # its link says so too

        far_link = re.search(
            r"(http://\S+/c/\S+)",  # type: ignore[union-attr]
            wait_for(lambda: messages_to(stack, FAR_PHONE))[0],
        ).group(1)
        accepted = stack.http.post(far_link + "/ack", follow_redirects=False)
        assert accepted.status_code == 303
        assert "已接单" in stack.http.get(far_link).text
        clock.set_minutes(25)  # the 20-minute duty-leader step finds the task answered
        wait_for(
            lambda: all(
                t.fired_at for t in rows(stack, timers) if t.key.startswith(f"esc:{first.id}:")
            ),
            what="steps fired",
        )
        assert [a.phone for a in rows(stack, staff_alerts)] == [SUPERVISOR]
        assert sms(stack, f"{replaced[0].id} 9", FAR_PHONE).text.count("已完成") == 1
    finally:
        assert stack.stop() == 0


def test_forged_and_expired_links_and_forged_webhooks_are_refused(tmp_path: Path) -> None:
    clock = Clock(tmp_path / "clock")
    stack = start(tmp_path, clock)
    try:
        stack.report(lat=33.5712, long=114.0153, description="树倒了")
        [assignment] = wait_for(lambda: rows(stack, assignments), what="assignment")
        secret = (tmp_path / "data" / "link_secret").read_text().strip()
        good = sign_link(secret, assignment.id, "tree-near", datetime.now(UTC) + timedelta(hours=1))
        assert stack.http.get(f"/c/{good}").status_code == 200
        forged = sign_link(
            "guessed-secret", assignment.id, "tree-near", datetime.now(UTC) + timedelta(hours=1)
        )
        other_crew = sign_link(
            secret, assignment.id, "tree-far", datetime.now(UTC) + timedelta(hours=1)
        )
        expired = sign_link(
            secret, assignment.id, "tree-near", datetime.now(UTC) - timedelta(minutes=1)
        )
        for token, reason in [
            (forged, "signature does not match"),
            (expired, "link expired"),
            ("garbage", "malformed link"),
        ]:
            for reply in (stack.http.get(f"/c/{token}"), stack.http.post(f"/c/{token}/ack")):
                assert reply.status_code == 403 and reason in reply.text
        assert stack.http.get(f"/c/{other_crew}").status_code == 403
        assert sms(stack, f"{assignment.id} 1", NEAR_PHONE, token="wrong").status_code == 403
        actions = [a.action for a in rows(stack, audit)]
        assert actions.count("crew_link.refused") == 7
        assert "webhook.signature_refused" in actions
        assert rows(stack, assignments)[0].state == "assigned"
    finally:
        assert stack.stop() == 0


def test_escalation_fires_exactly_once_across_a_crash(tmp_path: Path) -> None:
    clock = Clock(tmp_path / "clock")
    stack = start(tmp_path, clock)
    stack.report(lat=33.5712, long=114.0153, description="树倒了")
    wait_for(lambda: rows(stack, timers), what="escalation timers scheduled")
    stack.stop(signal.SIGKILL)  # between assignment and deadline

    clock.set_minutes(30)  # the deadline passed while nothing ran
    again = start(tmp_path, clock)
    try:
        wait_for(lambda: len(rows(again, assignments)) == 2, what="replacement after restart")
        wait_for(
            lambda: all(
                t.fired_at
                for t in rows(again, timers)
                if t.kind == "escalation" and t.key.startswith("esc:1:")
            ),
            what="the first crew's steps fired",
        )
        again.stop()
        again = start(tmp_path, clock)  # and once more: nothing fires twice
        wait_for(lambda: messages_to(again, FAR_PHONE), what="replacement notified")
        states = [(a.crew_id, a.state) for a in rows(again, assignments)]
        assert states == [("tree-near", "timed_out"), ("tree-far", "assigned")]
        alerts = rows(again, staff_alerts)
        assert [a.phone for a in alerts] == [SUPERVISOR, DUTY]  # step 1, then step 2
        fired = [t for t in rows(again, timers) if t.key.startswith("esc:1:")]
        assert len(fired) == 2 and all(t.fired_at for t in fired)
    finally:
        assert again.stop() == 0

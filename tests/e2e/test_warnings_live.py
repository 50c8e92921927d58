"""Citizen warnings on the embedded stack: subscribers imported by the command, a
warning drafted by one dispatcher and approved by another, sent once, 退订 honoured, a
cancel reaching exactly the original recipients, signed delivery receipts accepted and
forged ones refused, and the CAP/Atom output valid."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import xmlschema
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from pingan.store.schema import local_messages, sends
from tests.conftest import ROSTER
from tests.e2e.harness import Stack, wait_for

pytestmark = pytest.mark.e2e
TOKEN = "e2e-twilio"
XSD = Path(__file__).parent.parent / "data" / "cap-schema" / "cap12.xsd"
PEOPLE = """phone,openid,home_district,work_district,language,channels,consent_source,consent_at
13900000001,,yuanhui,,zh,sms,hotline,
13900000002,,yuanhui,,en,sms,hotline,
13900000003,,yancheng,yuanhui,zh,sms,wechat-menu,
13900000004,,shaoling,,zh,sms,hotline,
not-a-number,,yuanhui,,zh,sms,hotline,
"""


def _signed(stack: Stack, path: str, params: dict[str, str], token: str = TOKEN):  # type: ignore[no-untyped-def]
    url = f"{stack.base_url}{path}"
    signature = RequestValidator(token).compute_signature(url, params)
    return stack.http.post(url, data=params, headers={"X-Twilio-Signature": signature})


def _sms_to(stack: Stack) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    with stack.store.read() as conn:
        for m in conn.execute(select(local_messages).order_by(local_messages.c.id)):
            out.setdefault(m.recipient, []).append(m.body)
    return out


def test_warning_lifecycle_on_the_live_stack(tmp_path: Path) -> None:
    stack = Stack(
        tmp_path / "data",
        {
            "PINGAN_API_TOKENS": "alice=tok-alice,bob=tok-bob",
            "PINGAN_TWILIO_AUTH_TOKEN": TOKEN,
            "PINGAN_APPROVAL_THRESHOLD": "2",
            "PINGAN_ROSTER_FILE": str(ROSTER),
        },
    )
    alice = {"Authorization": "Bearer tok-alice"}
    bob = {"Authorization": "Bearer tok-bob"}
    try:
        csv_file = tmp_path / "people.csv"
        csv_file.write_text(PEOPLE, encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if not k.startswith("PINGAN_")}
        env.update(
            PINGAN_DATA_DIR=str(tmp_path / "data"), PINGAN_CONFIG=str(tmp_path / "absent.toml")
        )
        done = subprocess.run(
            [sys.executable, "-m", "pingan", "subscribers", "import", str(csv_file)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 1  # one row had a problem; the rest are in
        assert "5 rows: 4 imported, 0 already subscribed, 1 with problems" in done.stdout
        assert "not-a-number" in (tmp_path / "people.errors.csv").read_text()

        preview = stack.http.get(
            "/api/citizen-warnings/preview", params={"districts": "yuanhui"}, headers=alice
        ).json()
        assert preview["total"] == 3
        draft = stack.http.post(
            "/api/citizen-warnings",
            headers=alice,
            json={
                "event": "blizzard",
                "level": "orange",
                "districts": ["yuanhui"],
                "template": "blizzard-orange",
                "channels": ["sms"],
            },
        ).json()
        assert draft["recipients"] == 3 and draft["needs_second_person"] is True  # above 2
        assert draft["segments_zh"] == 1 and draft["estimated_cost_cny"] == 0.15
        own = stack.http.post(f"/api/citizen-warnings/{draft['id']}/approve", headers=alice)
        assert own.status_code == 403 and "the drafter cannot approve" in own.json()["error"]
        approved = stack.http.post(f"/api/citizen-warnings/{draft['id']}/approve", headers=bob)
        assert approved.status_code == 200, approved.text

        got = wait_for(lambda: (s := _sms_to(stack)) and len(s) >= 3 and s, what="warning out")
        assert set(got) == {"+8613900000001", "+8613900000002", "+8613900000003"}
        assert got["+8613900000002"][0].startswith("[Luohe] Snowstorm orange warning")
        assert all(len(v) == 1 for v in got.values())

        stop = _signed(stack, "/webhooks/twilio/sms", {"From": "+8613900000003", "Body": "退订"})
        assert "您已退订" in stop.text
        again = _signed(stack, "/webhooks/twilio/sms", {"From": "+8613900000003", "Body": "TD"})
        assert "<Message>" not in again.text  # confirmed once

        second = stack.http.post(
            "/api/citizen-warnings",
            headers=bob,
            json={
                "event": "road_icing",
                "level": "yellow",
                "districts": ["yuanhui"],
                "template": "road_icing-yellow",
                "channels": ["sms"],
            },
        ).json()
        assert (
            stack.http.post(
                f"/api/citizen-warnings/{second['id']}/approve", headers=alice
            ).status_code
            == 200
        )
        wait_for(lambda: len(_sms_to(stack)["+8613900000001"]) == 2, what="second warning")
        assert len(_sms_to(stack)["+8613900000003"]) == 1  # opted out: nothing further

        cancel = stack.http.post(
            f"/api/citizen-warnings/{draft['id']}/correct",
            headers=alice,
            json={"msg_type": "Cancel", "text": "暴雪橙色预警已解除"},
        )
        assert cancel.status_code == 201
        wait_for(lambda: len(_sms_to(stack)["+8613900000002"]) == 3, what="cancel out")
        final = _sms_to(stack)
        assert "+8613900000004" not in final  # never in the audience
        assert len(final["+8613900000003"]) == 1  # got the original, opted out since

        with stack.store.read() as conn:
            sid = conn.execute(
                select(sends.c.provider_id).where(
                    sends.c.warning_id == draft["id"], sends.c.recipient == "+8613900000001"
                )
            ).scalar_one()
        receipt = {"MessageSid": sid, "MessageStatus": "delivered", "To": "+8613900000001"}
        assert _signed(stack, "/webhooks/twilio/status", receipt).status_code == 204
        forged = _signed(
            stack, "/webhooks/twilio/status", {**receipt, "MessageStatus": "failed"}, token="guess"
        )
        assert forged.status_code == 403
        stats = stack.http.get(f"/api/citizen-warnings/{draft['id']}", headers=bob).json()
        assert stats["stats"]["delivered"] == 1 and stats["stats"]["sent"] == 2

        schema = xmlschema.XMLSchema(str(XSD))
        for warning_id in (draft["id"], cancel.json()["id"]):
            cap = stack.http.get(f"/cap/alerts/{warning_id}.xml")
            assert cap.headers["Content-Type"].startswith("application/cap+xml")
            schema.validate(cap.text)
        feed = stack.http.get("/cap/feed.atom").text
        assert feed.count("<entry>") == 3 and f"/cap/alerts/{draft['id']}.xml" in feed
    finally:
        assert stack.stop() == 0

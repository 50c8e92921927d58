"""Citizen warnings on a real database: import, audience, approval, sending through
the ledger once, opt-out, corrections to exactly the original recipients, failover,
and CAP output that validates against the OASIS schema."""

from __future__ import annotations

import asyncio
import io
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import xmlschema
from sqlalchemy import select

from alerts.cap import published_alert
from alerts.channels.base import Message, PermanentError
from alerts.citizen_warnings import WarningRefused, approve, correct, create_draft, preview, stats
from alerts.fanout import send_chunk
from alerts.pipeline import LEASE
from alerts.subscribers import import_csv, set_opt_out
from pingan.intake.feeds.cap import (
    CapAlert,
    CapArea,
    CapInfo,
    cap_bytes,
    parse_cap,
    parse_polygon,
    write_cap,
)
from pingan.intake.feeds.normalize import cap_to_signal
from pingan.store import Store
from pingan.store.schema import citizen_warnings, outbox
from tests.conftest import NOW

XSD = Path(__file__).parent.parent / "data" / "cap-schema" / "cap12.xsd"
CSV = """phone,openid,home_district,work_district,language,channels,consent_source,consent_at
13800000001,,yuanhui,,zh,sms,hotline,2026-01-01T00:00:00+08:00
138 0000 0002,oid-2,yancheng,yuanhui,en,"sms,wechat",wechat-menu,
+8613800000003,oid-3,shaoling,,zh,"wechat,sms",street-sign,
13800000001,,yuanhui,,zh,sms,hotline,
12345,,yuanhui,,zh,sms,hotline,
13800000005,,mars,,zh,sms,hotline,
13800000006,,yuanhui,,fr,sms,hotline,
,oid-7,yuanhui,,zh,wechat,,
"""


class Recorder:
    def __init__(self, name: str, fail: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.name, self.fail, self.sent = name, fail, []

    async def send(self, message: Message) -> str:
        if message.recipient in self.fail:
            raise PermanentError("number unreachable")
        self.sent.append((message.idempotency_key, message.recipient, message.body))
        return f"{self.name}-{len(self.sent)}"


@pytest.fixture
def people(store: Store) -> Store:
    result = import_csv(store, io.StringIO(CSV), NOW)
    assert (result.rows, result.imported, result.duplicates) == (8, 3, 1)
    assert [line for line, _ in result.errors] == [6, 7, 8, 9]
    assert "phone: '12345' is not a mobile number" in result.errors[0][1]
    assert "home_district: unknown district 'mars'" in result.errors[1][1]
    assert "language: 'fr'" in result.errors[2][1]
    assert "consent_source: required" in result.errors[3][1]
    return store


def _chunks(store: Store, warning_id: int) -> list[dict]:
    with store.read() as conn:
        return [
            p
            for p in conn.execute(select(outbox.c.payload)).scalars()
            if p.get("warning_id") == warning_id
        ]


def _send(store: Store, warning_id: int, channels: dict) -> None:
    for chunk in _chunks(store, warning_id):
        asyncio.run(send_chunk(store, channels, warning_id, chunk["from_id"], chunk["to_id"], NOW))


def test_audience_send_opt_out_and_exact_correction(people: Store) -> None:
    with people.read() as conn:
        assert preview(conn, ["yuanhui"])["per_district"] == {"yuanhui": 2}  # home or work
    draft = create_draft(
        people,
        "blizzard",
        "orange",
        ["yuanhui"],
        "blizzard-orange",
        ["sms", "wechat"],
        "alice",
        NOW,
    )
    assert draft["recipients"] == 2 and not draft["needs_second_person"]
    approve(people, draft["id"], "alice", NOW)
    sms, wechat = Recorder("sms"), Recorder("wechat")
    _send(people, draft["id"], {"sms": sms, "wechat": wechat})
    _send(people, draft["id"], {"sms": sms, "wechat": wechat})  # redelivered: nothing twice
    assert sorted(r for _, r, _ in sms.sent) == ["+8613800000001", "+8613800000002"]
    english = next(body for _, r, body in sms.sent if r == "+8613800000002")
    assert english.startswith("[Luohe] Snowstorm orange warning")
    with people.read() as conn:
        assert stats(conn, draft["id"])["sent"] == 2

    # Someone joins yuanhui, someone opts out: the cancel goes to exactly those who got it
    # and have not opted out since.
    import_csv(
        people, io.StringIO(CSV.splitlines()[0] + "\n13800000009,,yuanhui,,zh,sms,hotline,\n"), NOW
    )
    assert set_opt_out(people, "+8613800000002", True, NOW) is True
    assert set_opt_out(people, "+8613800000002", True, NOW) is False  # confirmed once
    cancel = correct(
        people,
        draft["id"],
        "Cancel",
        "【漯河城管】暴雪橙色预警已解除。",
        "alice",
        NOW + timedelta(hours=1),
    )
    later = Recorder("sms")
    _send(people, cancel, {"sms": later, "wechat": Recorder("wechat")})
    assert [r for _, r, _ in later.sent] == ["+8613800000001"]
    with people.read() as conn:
        original = conn.execute(
            select(citizen_warnings.c.status).where(citizen_warnings.c.id == draft["id"])
        ).scalar_one()
    assert original == "cancelled"


def test_opted_out_gets_nothing_further(people: Store) -> None:
    set_opt_out(people, "+8613800000001", True, NOW)
    draft = create_draft(
        people, "rainstorm", "red", ["yuanhui"], "rainstorm-red", ["sms"], "alice", NOW
    )
    approve(people, draft["id"], "bob", NOW)
    sms = Recorder("sms")
    _send(people, draft["id"], {"sms": sms})
    assert "+8613800000001" not in [r for _, r, _ in sms.sent]


def test_permanent_failure_fails_over_to_the_other_channel(people: Store) -> None:
    draft = create_draft(
        people, "gale", "yellow", ["yancheng"], "gale-yellow", ["sms", "wechat"], "alice", NOW
    )
    approve(people, draft["id"], "alice", NOW)
    sms, wechat = Recorder("sms", fail={"+8613800000002"}), Recorder("wechat")
    _send(people, draft["id"], {"sms": sms, "wechat": wechat})
    assert sms.sent == [] and [r for _, r, _ in wechat.sent] == ["oid-2"]
    with people.read() as conn:
        assert stats(conn, draft["id"]) | {} == {
            "queued": 0,
            "sent": 1,
            "delivered": 0,
            "failed": 1,
            "undelivered": 0,
            "opted_out": 0,
        }


class Killed(BaseException):
    """The process dying: nothing after it runs (no outcome is written)."""


class CrashingProvider:
    """An SMS provider that keeps what it took, can be asked about it (like Twilio's
    message list), and whose client process 'dies' at a chosen recipient."""

    name = "sms"

    def __init__(self) -> None:
        self.took: list[tuple[str, str]] = []
        self.die_at: str | None = None

    async def send(self, message: Message) -> str:
        if message.recipient == self.die_at:
            raise Killed("worker killed mid-chunk")
        self.took.append((message.recipient, message.body))
        return f"SM{len(self.took)}"

    async def find_sent(self, message: Message, since: datetime) -> str | None:
        taken = [i for i, m in enumerate(self.took) if m == (message.recipient, message.body)]
        return f"SM{taken[0] + 1}" if taken else None


def test_chunk_after_a_crash_sends_only_what_the_provider_did_not_take(people: Store) -> None:
    draft = create_draft(
        people, "blizzard", "red", ["yuanhui"], "blizzard-red", ["sms"], "alice", NOW
    )
    approve(people, draft["id"], "bob", NOW)
    [chunk] = _chunks(people, draft["id"])
    provider = CrashingProvider()
    provider.die_at = "+8613800000002"  # took ...01, then the process died
    with pytest.raises(Killed):
        asyncio.run(
            send_chunk(
                people, {"sms": provider}, draft["id"], chunk["from_id"], chunk["to_id"], NOW
            )
        )
    with people.read() as conn:
        assert stats(conn, draft["id"])["queued"] == 2  # both rows still pending
    provider.die_at = None
    redelivered = asyncio.run(
        send_chunk(
            people,
            {"sms": provider},
            draft["id"],
            chunk["from_id"],
            chunk["to_id"],
            NOW + LEASE,  # a claimed row is due again once its claim has run out
        )
    )
    assert sorted(r for r, _ in provider.took) == ["+8613800000001", "+8613800000002"]
    assert redelivered.sent == 2 and redelivered.retry == 0
    with people.read() as conn:
        assert stats(conn, draft["id"])["sent"] == 2


def test_two_person_rule_above_the_threshold(store: Store, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import alerts.citizen_warnings as cw

    monkeypatch.setattr(cw, "APPROVAL_THRESHOLD", 0)
    import_csv(store, io.StringIO(CSV), NOW)
    draft = create_draft(
        store, "blizzard", "yellow", ["yuanhui"], "blizzard-yellow", ["sms"], "alice", NOW
    )
    with pytest.raises(WarningRefused, match="the drafter cannot approve"):
        approve(store, draft["id"], "alice", NOW)
    assert approve(store, draft["id"], "bob", NOW) >= 1
    with pytest.raises(WarningRefused, match="not a draft"):
        approve(store, draft["id"], "carol", NOW)


def test_cap_output_validates_against_the_cap_1_2_schema(people: Store) -> None:
    schema = xmlschema.XMLSchema(str(XSD))
    draft = create_draft(
        people,
        "blizzard",
        "red",
        ["yuanhui", "yancheng"],
        "blizzard-red",
        ["sms"],
        "alice",
        NOW,
        expires=NOW + timedelta(hours=12),
    )
    approve(people, draft["id"], "bob", NOW)
    cancel = correct(people, draft["id"], "Cancel", "已解除", "bob", NOW)
    with people.read() as conn:
        for warning_id in (draft["id"], cancel):
            alert = published_alert(conn, warning_id)
            assert alert is not None
            xml = cap_bytes(write_cap(alert)).decode()
            schema.validate(xml)  # raises with the reason if not valid
            assert ("<msgType>Cancel</msgType>" in xml) == (warning_id == cancel)
    assert "<geocode><valueName>GB/T 2260</valueName><value>411102</value>" in xml


def test_playbook_levels_draft_or_auto_send(people: Store, index) -> None:  # type: ignore[no-untyped-def]
    from pingan.core import topics
    from pingan.core.events import WarningSignal
    from pingan.intake.accept import accept_warning
    from streams import handlers

    seen: set[str] = set()

    def process() -> None:
        with people.read() as conn:
            pending = [
                p
                for p in conn.execute(
                    select(outbox.c.payload)
                    .where(outbox.c.topic.in_([topics.WEATHER, topics.INCIDENTS]))
                    .order_by(outbox.c.id)
                ).scalars()
                if p["event_id"] not in seen
            ]
        for event in pending:
            seen.add(event["event_id"])
            handle = (
                handlers.handle_weather_event
                if event["type"].startswith("warning")
                else lambda s, i, e, n: handlers.handle_incident_event(s, e, n)
            )
            handle(people, index, event, NOW)
            handle(people, index, event, NOW)  # a redelivery changes nothing
        if pending:
            process()

    yellow = WarningSignal(
        "R1", "rainstorm", "yellow", "Alert", ("yuanhui",), NOW, NOW + timedelta(hours=6)
    )
    red = WarningSignal(
        "R2", "rainstorm", "red", "Update", ("yuanhui",), NOW, NOW + timedelta(hours=6), ("R1",)
    )
    for signal in (yellow, red):
        accept_warning(people, signal, "", "test", NOW)
        process()
    with people.read() as conn:
        made = conn.execute(
            select(
                citizen_warnings.c.level,
                citizen_warnings.c.status,
                citizen_warnings.c.template,
                citizen_warnings.c.approved_by,
            ).order_by(citizen_warnings.c.id)
        ).all()
    assert [tuple(r) for r in made] == [
        ("yellow", "draft", "rainstorm-yellow", None),  # flood-drainage yellow: approval
        ("red", "sent", "rainstorm-red", "playbook (auto-send)"),  # red: auto-send
    ]


# A polygon across the Sha river, over the north-west of 源汇区's city core and the
# south of 郾城区's (the real outlines: pingan/data/districts.geojson), clear of 召陵区
# and of the functional zones' centres.
ACROSS_THE_SHA = "33.575,113.99 33.575,114.01 33.59,114.01 33.59,113.99 33.575,113.99"
EVERY_DISTRICT = f"""{CSV.splitlines()[0]}
13800000101,,yuanhui,,zh,sms,hotline,
13800000102,,yancheng,,zh,sms,hotline,
13800000103,,shaoling,yancheng,zh,sms,hotline,
13800000104,,shaoling,,zh,sms,hotline,
13800000105,,jingkai,,zh,sms,hotline,
13800000106,,xicheng,,zh,sms,hotline,
13800000107,,wuyang,,zh,sms,hotline,
13800000108,,linying,,zh,sms,hotline,
"""


def test_a_polygon_over_part_of_two_districts_reaches_exactly_their_subscribers(
    store: Store,
) -> None:
    """Subscribers are stored by home and work district, with no location: a shape
    reaches the districts whose real outline it shares area with, and so exactly the
    subscribers who live or work in them."""
    import_csv(store, io.StringIO(EVERY_DISTRICT), NOW)
    area = CapArea("", polygons=(parse_polygon(ACROSS_THE_SHA, "polygon"),))

    # Incoming: an observatory's CAP with that polygon covers the same two districts.
    incoming = CapAlert(
        "1.2",
        "LH-TEST-1",
        "obs@example.cn",
        NOW,
        "Actual",
        "Alert",
        "Public",
        infos=(
            CapInfo(
                language="zh-CN",
                categories=("Met",),
                event="暴雪",
                urgency="Expected",
                severity="Severe",
                certainty="Likely",
                headline="漯河市气象台发布暴雪橙色预警信号",
                areas=(CapArea("沙河两岸", polygons=area.polygons),),
            ),
        ),
    )
    signal, _ = cap_to_signal(parse_cap(cap_bytes(write_cap(incoming))))
    assert signal.districts == ("yuanhui", "yancheng")

    # Outgoing: a warning drafted for the polygon goes to their subscribers only.
    draft = create_draft(
        store, "blizzard", "orange", [], "blizzard-orange", ["sms"], "alice", NOW, area=area
    )
    assert (draft["districts"], draft["recipients"]) == (["yuanhui", "yancheng"], 3)
    approve(store, draft["id"], "bob", NOW)
    sms = Recorder("sms")
    _send(store, draft["id"], {"sms": sms})
    assert sorted(r for _, r, _ in sms.sent) == [
        "+8613800000101",  # lives in 源汇区
        "+8613800000102",  # lives in 郾城区
        "+8613800000103",  # lives in 召陵区, works in 郾城区
    ]

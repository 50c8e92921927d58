"""The citizen hotline on the embedded stack: third-party Open311 clients, XML that
follows the spec, 50 reports of 3 trees becoming 3 incidents, SMS intake with
signatures, the review queue, call-backs to citizens, and rate limits."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from pathlib import Path
from xml.etree.ElementTree import fromstring

import pytest
from civicbot.open311 import Open311Client
from civicbot.registry import Endpoint
from georeport import GeoReport
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from pingan.store.schema import audit, local_messages, reports
from tests.conftest import ROSTER
from tests.e2e.harness import OPEN311_KEY, Stack, wait_for

pytestmark = pytest.mark.e2e
TWILIO_TOKEN = "e2e-twilio-auth-token"
TREES = [(33.5712, 114.0153), (33.5905, 114.0112), (33.5790, 114.0620)]
WORDINGS = [
    "大树倒了",
    "树倒在路上了，车过不去",
    "有棵树被风刮倒了",
    "树到了！！快来人",
    "路边行道树倒伏",
    "a tree fell across the road",
    "断枝挂在电线上",
    "树枝断了一大根",
]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = Stack(
        tmp_path_factory.mktemp("hotline"),
        {"PINGAN_ROSTER_FILE": str(ROSTER), "PINGAN_TWILIO_AUTH_TOKEN": TWILIO_TOKEN},
    )
    yield running
    running.stop()


def base(stack: Stack) -> str:
    return f"{stack.base_url}/open311/v2"


def test_third_party_clients_list_create_and_read_back(stack: Stack) -> None:
    client = Open311Client(Endpoint("pingan", "Ping'an", base(stack), write=True))
    codes = {s["service_code"] for s in client.list_services()}
    assert {"fallen_tree", "waterlogging", "snow_ice", "manhole", "streetlight"} <= codes
    sent = client.create_request(
        "streetlight",
        dry_run=False,
        confirm="SEND",
        api_key=OPEN311_KEY,
        lat=33.5760,
        lng=114.0170,
        description="中心医院门口路灯不亮",
        attributes={"pole_number": "YH-0042"},
    )
    request_id = sent.response[0]["service_request_id"]
    read = client.get_request(request_id)
    assert read["service_code"] == "streetlight" and read["status"] == "open"
    assert read["agency_responsible"].startswith("漯河市城市管理局")

    geo = GeoReport(base(stack))
    assert [s["service_code"] for s in geo.get_service_list()] == sorted(codes)
    as_xml = GeoReport(base(stack), output_format="xml")
    assert {s["service_code"] for s in as_xml.get_service_list()} == codes
    one = as_xml.get_service_request(request_id)
    assert one["service_request_id"] == request_id and one["status"] == "open"
    definition = as_xml.get_service_definition("fallen_tree")
    assert definition["attributes"]["attribute"]["code"] == "blocking"


def test_xml_is_well_formed_with_the_spec_element_names(stack: Stack) -> None:
    assert stack.report(lat=33.5712, long=114.0153, description="xml").status_code == 200
    for path, root, item, fields in [
        (
            "/services.xml",
            "services",
            "service",
            {
                "service_code",
                "service_name",
                "description",
                "metadata",
                "type",
                "keywords",
                "group",
            },
        ),
        (
            "/requests.xml",
            "service_requests",
            "request",
            {
                "service_request_id",
                "status",
                "status_notes",
                "service_name",
                "service_code",
                "description",
                "agency_responsible",
                "service_notice",
                "requested_datetime",
                "updated_datetime",
                "expected_datetime",
                "address",
                "address_id",
                "zipcode",
                "lat",
                "long",
                "media_url",
            },
        ),
    ]:
        reply = stack.http.get(base(stack) + path)
        assert reply.headers["Content-Type"].startswith("text/xml")
        assert reply.content.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
        doc = fromstring(reply.content)
        assert doc.tag == root and len(doc) >= 1 and doc[0].tag == item
        assert {child.tag for child in doc[0]} == fields
    error = fromstring(
        stack.http.post(base(stack) + "/requests.xml", data={"api_key": "wrong"}).content
    )
    assert error.tag == "errors" and error[0].find("code").text == "403"


def test_search_filters(stack: Stack) -> None:
    made = stack.report(
        service_code="manhole", lat=33.5700, long=114.0100, description="井盖没了"
    ).json()[0]["service_request_id"]
    ids = {
        r["service_request_id"]
        for r in stack.http.get(
            base(stack) + "/requests.json", params={"service_code": "manhole"}
        ).json()
    }
    assert made in ids
    assert (
        stack.http.get(base(stack) + "/requests.json", params={"service_request_id": made}).json()[
            0
        ]["service_code"]
        == "manhole"
    )
    assert (
        stack.http.get(
            base(stack) + "/requests.json", params={"status": "closed", "service_code": "manhole"}
        ).json()
        == []
    )
    bad = stack.http.get(
        base(stack) + "/requests.json",
        params={"start_date": "2026-01-01T00:00:00Z", "end_date": "2026-12-01T00:00:00Z"},
    )
    assert bad.status_code == 400 and "at most 90 days" in bad.json()[0]["description"]
    far = stack.report(lat=39.9, long=116.4)
    assert far.status_code == 400 and "outside the service area" in far.json()[0]["description"]
    assert stack.http.get(base(stack) + "/openapi.yaml").text.startswith("openapi: 3")


def test_fifty_reports_about_three_trees_become_three_incidents(stack: Stack) -> None:
    rng = random.Random(7)
    counts = [17, 20, 13]
    sent: dict[int, list[str]] = {0: [], 1: [], 2: []}
    order = [t for t, n in enumerate(counts) for _ in range(n)]
    rng.shuffle(order)
    for n, tree in enumerate(order):
        lat, lon = TREES[tree]
        # within ~20 m of the tree, different callers, varied words
        reply = stack.report(
            lat=f"{lat + rng.uniform(-1.5e-4, 1.5e-4):.6f}",
            long=f"{lon + rng.uniform(-1.5e-4, 1.5e-4):.6f}",
            description=f"{rng.choice(WORDINGS)}（第{n}个电话）",
            phone=f"+86138{n:08d}",
        )
        assert reply.status_code == 200, reply.text
        sent[tree].append(reply.json()[0]["service_request_id"])

    def grouped() -> dict[int, set[str]] | None:
        by_incident: dict[int, set[str]] = {}
        with stack.store.read() as conn:
            for row in conn.execute(
                select(reports.c.id, reports.c.incident_id).where(
                    reports.c.id.in_([int(i) for ids in sent.values() for i in ids])
                )
            ):
                if row.incident_id is None:
                    return None
                by_incident.setdefault(row.incident_id, set()).add(str(row.id))
        return by_incident

    incidents = wait_for(grouped, timeout=60, what="all 50 reports attached")
    assert sorted(len(v) for v in incidents.values()) == sorted(counts)
    assert sorted(map(frozenset, incidents.values()), key=len) == sorted(
        (frozenset(v) for v in sent.values()), key=len
    )


def _signed_sms(stack: Stack, body: str, phone: str, token: str = TWILIO_TOKEN):  # type: ignore[no-untyped-def]
    url = f"{stack.base_url}/webhooks/twilio/sms"
    params = {
        "From": phone,
        "To": "+8610690000",
        "Body": body,
        "MessageSid": "SM" + uuid.uuid4().hex,  # each SMS has its own (replays are refused)
        "AccountSid": "AC" + "0" * 32,
    }
    signature = RequestValidator(token).compute_signature(url, params)
    return stack.http.post(url, data=params, headers={"X-Twilio-Signature": signature})


def test_sms_intake_reply_review_and_satisfaction(stack: Stack) -> None:
    reply = _signed_sms(stack, "泰山路上有根大树枝掉下来了，横在马路中间", "+8613700000001")
    assert reply.status_code == 200 and reply.headers["Content-Type"].startswith("text/xml")
    assert "已受理，编号" in reply.text
    with stack.store.read() as conn:
        row = conn.execute(select(reports).order_by(reports.c.id.desc()).limit(1)).one()
    assert (row.source, row.service_code, row.district, row.segment) == (
        "sms",
        "fallen_tree",
        "yancheng",
        "yancheng-02",
    )
    assert row.classification["words"]

    again = _signed_sms(stack, "泰山路上有根大树枝掉下来了，横在马路中间", "+8613700000001")
    assert "请勿重复发送" in again.text

    forged = _signed_sms(stack, "树倒了", "+8613700000002", token="not-the-token")
    assert forged.status_code == 403
    with stack.store.read() as conn:
        assert conn.execute(
            select(audit.c.action).where(audit.c.action == "webhook.signature_refused")
        ).first()

    unsure = _signed_sms(stack, "我们这边有点问题，麻烦来看看", "+8613700000003")
    assert "工作人员将核实" in unsure.text
    queue = stack.http.get("/api/review", headers=stack.auth).json()["reports"]
    waiting = next(r for r in queue if r["contact"].get("phone") == "+86137****0003")
    assert waiting["review_reason"].startswith("category unsure")
    decided = stack.http.post(
        f"/api/review/{waiting['id']}",
        headers=stack.auth,
        json={"service_code": "streetlight", "address": "黄山路"},
    )
    assert decided.status_code == 200, decided.text
    incident = wait_for(
        lambda: _incident_of(stack, waiting["id"]), what="reviewed report opens an incident"
    )

    resolved = stack.http.post(
        f"/api/incidents/{incident}/resolve", headers=stack.auth, json={"reason": "更换了灯泡"}
    )
    assert resolved.status_code == 200
    done = wait_for(lambda: _messages_to(stack, "+8613700000003"), what="resolved SMS")
    assert "已处理：更换了灯泡" in done[-1] and "回复1-5评价" in done[-1]
    rating = _signed_sms(stack, "5", "+8613700000003")
    assert "感谢您的评价" in rating.text
    with stack.store.read() as conn:
        assert (
            conn.execute(
                select(reports.c.satisfaction).where(reports.c.id == waiting["id"])
            ).scalar_one()
            == 5
        )


def test_open311_caller_hears_back_on_intake(stack: Stack) -> None:
    reply = stack.report(
        service_code="snow_ice",
        lat=33.5734,
        long=114.0202,
        description="沙河大桥结冰",
        phone="+8613600000009",
    )
    request_id = reply.json()[0]["service_request_id"]
    [text] = wait_for(lambda: _messages_to(stack, "+8613600000009"), what="intake SMS")
    assert f"已受理，编号{request_id}" in text


def test_operator_enters_a_call(stack: Stack) -> None:
    reply = stack.http.post(
        "/api/reports",
        headers=stack.auth,
        json={"text": "燕山路口下穿通道积水，有辆车困在里面", "phone": "+8613500000001"},
    )
    assert reply.status_code == 201
    body = reply.json()
    assert (body["category"], body["review_reason"]) == ("waterlogging", None)
    assert "积水" in body["words"]
    assert stack.http.post("/api/reports", headers=stack.auth, json={"text": ""}).status_code == 400


def test_flood_of_requests_gets_429(tmp_path: Path) -> None:
    flooded = Stack(
        tmp_path,
        {
            "PINGAN_OPEN311_RATE_PER_MIN": "10",
            "PINGAN_ROSTER_FILE": str(ROSTER),
            "PINGAN_OPEN311_TRUSTED_KEYS": "the-12345-platform",
        },
    )
    try:
        replies = [
            flooded.report(lat=33.5712, long=114.0153, description=f"树倒了{n}") for n in range(25)
        ]
        limited = [r for r in replies if r.status_code == 429]
        accepted = [r for r in replies if r.status_code == 200]
        assert len(accepted) == 10 and len(limited) == 15
        assert int(limited[0].headers["Retry-After"]) >= 1
        assert "too many requests from this api_key" in limited[0].json()[0]["description"]
        with flooded.store.read() as conn:
            assert len(conn.execute(select(reports)).all()) == 10

        # The city's 12345 platform forwards a whole storm through one trusted key.
        trusted = [
            flooded.report(
                api_key="the-12345-platform", lat=33.5712, long=114.0153, description=f"积水{n}"
            )
            for n in range(25)
        ]
        assert [r.status_code for r in trusted] == [200] * 25
        # Still limited for everyone else on the ordinary key.
        assert flooded.report(lat=33.5712, long=114.0153, description="又一棵").status_code == 429
    finally:
        assert flooded.stop() == 0


def _incident_of(stack: Stack, report_id: int) -> int | None:
    with stack.store.read() as conn:
        return conn.execute(
            select(reports.c.incident_id).where(reports.c.id == report_id)
        ).scalar_one()


def _messages_to(stack: Stack, phone: str) -> list[str]:
    with stack.store.read() as conn:
        return list(
            conn.execute(
                select(local_messages.c.body)
                .where(local_messages.c.recipient == phone)
                .order_by(local_messages.c.id)
            ).scalars()
        )

"""A person's message history over the real HTTP route: every message sent or tried to
one number (as crew, as citizen, as subscriber on SMS and on WeChat, and the SMS
replies Twilio sent for us), newest first, a bounded page at a time; only for a
logged-in dispatcher or an API token; a bad number named in a 400; the number never
whole in a log line."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from twilio.request_validator import RequestValidator

from alerts import citizen_warnings as cw
from alerts.channels.base import Message
from alerts.channels.local_outbox import LocalOutboxChannel
from alerts.fanout import send_chunk
from alerts.pipeline import send_once
from alerts.subscribers import import_csv
from pingan.store import Store
from pingan.users import create_user
from playbooks.registry import PlaybookRegistry
from tests.conftest import NOW
from tests.integration.live_app import API_TOKEN, TWILIO_TOKEN, LiveApp, live_app

PHONE = "+8613900000001"  # a crew leader who also lives in 源汇区 and subscribes
OTHER = "+8613900000002"
LINK = "http://127.0.0.1:8080/c/eyJhIjoxfQ.c2lnbmF0dXJlX2J5dGVz"
PEOPLE = """phone,openid,home_district,work_district,language,channels,consent_source,consent_at
13900000001,openid-leader,yuanhui,,zh,"wechat,sms",hotline,
13900000002,,yuanhui,,zh,sms,hotline,
"""


@pytest.fixture
def app(store: Store, registry: PlaybookRegistry, tmp_path: Path) -> Iterator[LiveApp]:
    for name, role in (("dora", "dispatcher"), ("vic", "viewer")):
        create_user(store, name, f"{name}-password-123", role, "test", NOW)
    with live_app(store, registry, tmp_path) as running:
        yield running


@contextmanager
def logged_in(app: LiveApp, user: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=app.base_url, timeout=10) as client:
        form = {"username": user, "password": f"{user}-password-123"}
        answer = client.post("/login", data=form)
        assert answer.status_code == 303, answer.text
        yield client


def history(client: httpx.Client, phone: str, **query: Any) -> httpx.Response:
    params = "&".join(f"{k}={v}" for k, v in query.items())
    return client.get(f"/api/messages?phone={quote(phone)}" + (f"&{params}" if params else ""))


def messages_to_the_leader(store: Store, app: LiveApp) -> None:
    """What the ledger holds after a day: a crew assignment with its link and a
    reminder, a citizen's receipt, a warning to the subscriber (WeChat, then SMS for
    their neighbour), and the reply to an SMS the leader sent."""
    local = LocalOutboxChannel(store)

    async def send() -> None:
        for key, to, body in (
            ("assignment:7", PHONE, f"【平安派单】任务7：倒伏树木，人民路。\n或打开：{LINK}"),
            ("report:3:citizen.received", OTHER, "【漯河城管】您反映的倒伏树木已受理，编号3。"),
            ("assignment:7:reminder", PHONE, "【平安派单】提醒：任务7（倒伏树木）已超过到场时限"),
        ):
            await send_once(store, local, Message(key, to, body), NOW)

    asyncio.run(send())
    import_csv(store, io.StringIO(PEOPLE), NOW)
    draft = cw.create_draft(
        store, "blizzard", "orange", ["yuanhui"], "blizzard-orange", ["wechat", "sms"],
        "alice", NOW,
    )  # fmt: skip
    cw.approve(store, int(draft["id"]), "bob", NOW)
    channels = {"sms": local, "wechat": local}
    asyncio.run(send_chunk(store, channels, int(draft["id"]), 1, 5000, NOW))
    params = {"MessageSid": "SM" + "9" * 32, "From": PHONE, "To": "+15005550006", "Body": "7 1"}
    url = f"{app.base_url}/webhooks/twilio/sms"
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(url, params)
    reply = app.http.post(url, data=params, headers={"X-Twilio-Signature": signature})
    assert reply.status_code == 200 and "<Message>" in reply.text


def test_only_a_logged_in_dispatcher_or_a_token_reads_it(app: LiveApp) -> None:
    anonymous = history(app.http, PHONE)
    assert anonymous.status_code == 401
    with logged_in(app, "vic") as viewer:
        refused = history(viewer, PHONE)
        assert refused.status_code == 403
        assert "needs dispatcher" in refused.json()["error"]
    with logged_in(app, "dora") as dispatcher:
        assert history(dispatcher, PHONE).json() == {
            "phone": PHONE,
            "messages": [],
            "next_before": None,
            "next": None,
        }
    bearer = {"Authorization": f"Bearer {API_TOKEN}"}
    assert app.http.get("/api/messages", params={"phone": PHONE}, headers=bearer).status_code == 200


def test_every_message_to_a_number_newest_first_a_page_at_a_time(
    app: LiveApp, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    messages_to_the_leader(store, app)
    caplog.set_level(logging.INFO, logger="pingan.http.api")
    with logged_in(app, "dora") as dispatcher:
        first = history(dispatcher, "139 0000 0001", limit=2)  # any spelling of the number
        assert first.status_code == 200
        pages = [first.json()]
        while pages[-1]["next"] is not None:
            pages.append(dispatcher.get(pages[-1]["next"]).json())
        everything = history(dispatcher, PHONE).json()
    assert [len(p["messages"]) for p in pages] == [2, 2]
    seen = [m for p in pages for m in p["messages"]]
    assert seen == everything["messages"]  # the pages are the whole, in order
    ids = [m["id"] for m in seen]
    assert ids == sorted(ids, reverse=True)  # newest first
    assert [(m["kind"], m["channel"], m["to"], m["status"]) for m in seen] == [
        ("sms.reply", "sms", PHONE, "sent"),
        ("citizen.warning", "wechat", "openid-leader", "sent"),  # through the subscriber
        ("crew.reminder", "local", PHONE, "sent"),
        ("crew.assignment", "local", PHONE, "sent"),
    ]
    reply, warning, _, assignment = seen
    assert reply["text"].startswith("【漯河城管】") and reply["provider_id"] is None
    assert warning["text"].startswith("【漯河城管】源汇区暴雪橙色预警。")
    assert warning["warning_id"] is not None and warning["provider_id"].startswith("local-")
    # a crew link is that crew's credential: the history says one was sent, not which
    assert (
        assignment["text"]
        == "【平安派单】任务7：倒伏树木，人民路。\n或打开：http://127.0.0.1:8080/c/[link]"
    )
    assert assignment["at"] == NOW.isoformat()
    # the neighbour's messages are not the leader's, and the neighbour has their own
    assert OTHER not in {m["to"] for m in seen}
    with logged_in(app, "dora") as dispatcher:
        theirs = history(dispatcher, OTHER).json()["messages"]
    assert [m["kind"] for m in theirs] == ["citizen.warning", "citizen.received"]
    # the log says who looked, and never the whole number
    lines = [r.getMessage() for r in caplog.records if r.name == "pingan.http.api"]
    assert any("by=dora phone=+86139****0001" in line for line in lines), lines
    assert not any("13900000001" in line for line in lines)


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("", "phone: required"),
        ("phone=abc", "phone: 'abc' is not a phone number"),
        ("phone=123", "phone: '123' is not a possible phone number"),
        (f"phone={quote(PHONE)}&limit=0", "limit: 0 is outside 1..200"),
        (f"phone={quote(PHONE)}&limit=201", "limit: 201 is outside 1..200"),
        (f"phone={quote(PHONE)}&limit=ten", "limit: 'ten' is not a whole number"),
        (f"phone={quote(PHONE)}&before=-1", "before: '-1' is not an id"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(app: LiveApp, query: str, error: str) -> None:
    bearer = {"Authorization": f"Bearer {API_TOKEN}"}
    answer = app.http.get(f"/api/messages?{query}", headers=bearer)
    assert answer.status_code == 400
    assert answer.json()["error"].startswith(error)


def test_a_plus_typed_into_the_url_is_kept(app: LiveApp) -> None:
    """?phone=+14155550100 unencoded arrives as ' 14155550100': read as the US number
    it is, not as a Chinese one."""
    bearer = {"Authorization": f"Bearer {API_TOKEN}"}
    answer = app.http.get("/api/messages?phone=+14155550100", headers=bearer)
    assert answer.status_code == 200
    assert answer.json()["phone"] == "+14155550100"


def test_a_dispatcher_gives_up_on_a_pending_message(app: LiveApp, store: Store) -> None:
    """A message the provider has not taken yet is retried until it is; a dispatcher
    may end it instead: it is failed, never sent, and the history says who gave up."""
    from alerts.pipeline import Outgoing, Sender, queue

    with store.transaction() as conn:
        queue(conn, [Outgoing(Message("assignment:9", PHONE, "【平安派单】任务9"), "sms")], NOW)
    bearer = {"Authorization": f"Bearer {API_TOKEN}"}
    [row] = app.http.get("/api/messages", params={"phone": PHONE}, headers=bearer).json()[
        "messages"
    ]
    assert row["status"] == "pending"
    gave_up = app.http.post(f"/api/messages/{row['id']}/give-up", headers=bearer)
    assert gave_up.status_code == 200 and gave_up.json() == {"id": row["id"], "status": "failed"}
    again = app.http.post(f"/api/messages/{row['id']}/give-up", headers=bearer)
    assert again.status_code == 409 and "is not pending" in again.json()["error"]
    [row] = app.http.get("/api/messages", params={"phone": PHONE}, headers=bearer).json()[
        "messages"
    ]
    assert (row["status"], row["error"]) == ("failed", "given up by token-1")
    local = LocalOutboxChannel(store)
    assert asyncio.run(Sender(store, {"sms": local}).drain(NOW)).sent == 0

"""Twilio's delivery receipts through the real status-callback route, signed the way
Twilio signs them (the SDK's RequestValidator): every status Twilio's own OpenAPI
description lists is accepted and moves the ledger, never backwards; a message in a
terminal status is not sent again when its event comes round once more; a receipt
that comes before its send is recorded is held, then applied."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from alerts import citizen_warnings as cw
from alerts.channels.base import Message
from alerts.channels.twilio_sms import TwilioSmsChannel
from alerts.fanout import send_chunk
from alerts.pipeline import send_once
from alerts.subscribers import import_csv
from pingan import retention
from pingan.store import Store
from pingan.store.schema import held_receipts, sends
from playbooks.registry import PlaybookRegistry
from tests.integration.live_app import TWILIO_TOKEN, LiveApp, live_app
from tests.integration.test_channels import ACCOUNT, TwilioMessages, run_app

SPEC = Path(__file__).parent.parent / "data" / "twilio" / "twilio_api_v2010.json"
NOW = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
PATH = "/webhooks/twilio/status"
PEOPLE = """phone,openid,home_district,work_district,language,channels,consent_source,consent_at
13900000001,,yuanhui,,zh,sms,hotline,
13900000002,,yuanhui,,zh,sms,hotline,
13900000003,,yuanhui,,en,sms,hotline,
"""


@pytest.fixture
def app(store: Store, registry: PlaybookRegistry, tmp_path: Path) -> Iterator[LiveApp]:
    with live_app(store, registry, tmp_path) as running:
        yield running


def receipt(sid: str, status: str, error: str = "") -> dict[str, str]:
    """The form of a Twilio status callback (a subset of its properties)."""
    params = {
        "AccountSid": ACCOUNT,
        "ApiVersion": "2010-04-01",
        "From": "+15005550006",
        "To": "+8613800000001",
        "MessageSid": sid,
        "SmsSid": sid,
        "MessageStatus": status,
        "SmsStatus": status,
    }
    return {**params, "ErrorCode": error} if error else params


def signed(app: LiveApp, params: dict[str, str], token: str = TWILIO_TOKEN) -> httpx.Response:
    url = app.base_url + PATH
    signature = RequestValidator(token).compute_signature(url, params)
    return app.http.post(PATH, data=params, headers={"X-Twilio-Signature": signature})


def sent_row(store: Store, key: str, sid: str) -> None:
    with store.transaction() as conn:
        conn.execute(
            sends.insert().values(
                dedup_key=key,
                channel="sms",
                recipient="+8613800000001",
                body="【平安派单】任务1：倒伏树木",
                status="sent",
                provider_id=sid,
                created_at=NOW,
                updated_at=NOW,
            )
        )


def ledger(store: Store) -> dict[str, tuple[str, str | None]]:
    with store.read() as conn:
        rows = conn.execute(select(sends.c.dedup_key, sends.c.status, sends.c.error)).all()
    return {r.dedup_key: (r.status, r.error) for r in rows}


# What a row the provider took ('sent') becomes when a receipt reports each status.
FROM_SENT = {
    "accepted": "sent",
    "scheduled": "sent",
    "queued": "sent",
    "sending": "sent",
    "receiving": "sent",
    "sent": "sent",
    "failed": "failed",
    "undelivered": "undelivered",
    "canceled": "canceled",
    "partially_delivered": "partially_delivered",
    "delivered": "delivered",
    "received": "received",
    "read": "read",
}


def test_every_status_in_twilios_description_is_accepted_and_moves_the_ledger(
    app: LiveApp, store: Store
) -> None:
    enum = json.loads(SPEC.read_text())["components"]["schemas"]["message_enum_status"]["enum"]
    assert set(enum) == set(FROM_SENT)  # the table covers exactly what Twilio may send
    for n, status in enumerate(enum):
        sent_row(store, f"k-{status}", f"SM{n:032d}")
        reply = signed(app, receipt(f"SM{n:032d}", status))
        assert reply.status_code == 204, (status, reply.text)
    assert ledger(store) == {f"k-{s}": (after, None) for s, after in FROM_SENT.items()}


def test_receipts_out_of_order_never_move_a_message_backwards(app: LiveApp, store: Store) -> None:
    sent_row(store, "late", "SM" + "1" * 32)
    for status, error, expected in (
        ("delivered", "", ("delivered", None)),
        ("sent", "", ("delivered", None)),  # a late 'sent' after 'delivered'
        ("queued", "", ("delivered", None)),
        ("undelivered", "30003", ("delivered", None)),
        ("read", "", ("read", None)),
        ("delivered", "", ("read", None)),
    ):
        assert signed(app, receipt("SM" + "1" * 32, status, error)).status_code == 204
        assert ledger(store)["late"] == expected, status
    # A carrier that first reports a failure and then the delivery: the better news wins.
    sent_row(store, "corrected", "SM" + "2" * 32)
    assert signed(app, receipt("SM" + "2" * 32, "undelivered", "30003")).status_code == 204
    assert ledger(store)["corrected"] == ("undelivered", "30003")
    assert signed(app, receipt("SM" + "2" * 32, "failed", "30008")).status_code == 204
    assert ledger(store)["corrected"] == ("undelivered", "30003")  # same place: first stays
    assert signed(app, receipt("SM" + "2" * 32, "delivered")).status_code == 204
    assert ledger(store)["corrected"] == ("delivered", None)


def test_forged_unknown_and_malformed_receipts_change_nothing(app: LiveApp, store: Store) -> None:
    sent_row(store, "k", "SM" + "3" * 32)
    forged = signed(app, receipt("SM" + "3" * 32, "failed"), token="not-the-token")
    assert forged.status_code == 403
    unknown = signed(app, receipt("SM" + "3" * 32, "exploded"))
    assert unknown.status_code == 400
    assert "MessageStatus: 'exploded' is not one of accepted, canceled" in unknown.json()["error"]
    assert ledger(store) == {"k": ("sent", None)}


def test_terminal_statuses_end_retries(app: LiveApp, store: Store) -> None:
    """A crew message delivered, and another Twilio reported undelivered: when their
    events come round again (a redelivery), neither is sent a second time."""
    twilio = TwilioMessages()
    path = "/2010-04-01/Accounts/{sid}/Messages.json"
    delivered = Message("assignment:1", "+8613800000001", "【平安派单】任务1：倒伏树木")
    lost = Message("assignment:2", "+8613800000002", "【平安派单】任务2：井盖缺失")

    async def receipts(sid: str, status: str, error: str = "") -> None:
        params = receipt(sid, status, error)
        url = app.base_url + PATH
        signature = RequestValidator(TWILIO_TOKEN).compute_signature(url, params)
        async with httpx.AsyncClient() as client:
            reply = await client.post(url, data=params, headers={"X-Twilio-Signature": signature})
        assert reply.status_code == 204

    async def test(base: str) -> list[Any]:
        channel = TwilioSmsChannel(ACCOUNT, "secret", from_number="+15005550006", base_url=base)
        first = [await send_once(store, channel, m, NOW) for m in (delivered, lost)]
        await receipts(first[0].provider_id, "delivered")
        await receipts(first[1].provider_id, "undelivered", "30003")
        again = [await send_once(store, channel, m, NOW) for m in (delivered, lost)]
        await channel.http.close()
        return first + again

    outcomes = run_app({("POST", path): twilio.create, ("GET", path): twilio.list}, test)
    assert [o.status for o in outcomes] == ["sent", "sent", "already_sent", "failed"]
    assert outcomes[3].error == "30003"
    assert len(twilio.created) == 2  # one create each, none after the receipts
    assert ledger(store) == {
        "assignment:1": ("delivered", None),
        "assignment:2": ("undelivered", "30003"),
    }


class TwilioReportingAtOnce(TwilioMessages):
    """Twilio's Messages resource that delivers at once: before it even answers the
    create, it posts a signed 'delivered' receipt to the message's StatusCallback, as
    a fast carrier can make it seem to a sender that records its sends later."""

    async def create(self, request: web.Request) -> web.Response:
        form = await request.post()
        created = self.resource(str(form["To"]), str(form["Body"]), "queued")
        params = receipt(created["sid"], "delivered")
        url = str(form["StatusCallback"])
        signature = RequestValidator(TWILIO_TOKEN).compute_signature(url, params)
        async with httpx.AsyncClient() as client:
            answer = await client.post(url, data=params, headers={"X-Twilio-Signature": signature})
        assert answer.status_code == 204
        return web.json_response(created, status=201)


def test_a_receipt_before_its_send_is_recorded_is_held_then_applied(
    app: LiveApp, store: Store
) -> None:
    """A warning chunk writes its provider ids when the chunk is done; receipts that
    came sooner are held, then applied: every message ends 'delivered', none 'sent'."""
    import_csv(store, io.StringIO(PEOPLE), NOW)
    draft = cw.create_draft(
        store, "gale", "yellow", ["yuanhui"], "gale-yellow", ["sms"], "alice", NOW
    )
    cw.approve(store, int(draft["id"]), "bob", NOW)
    twilio = TwilioReportingAtOnce()
    path = "/2010-04-01/Accounts/{sid}/Messages.json"

    async def test(base: str) -> Any:
        channel = TwilioSmsChannel(
            ACCOUNT,
            "secret",
            from_number="+15005550006",
            status_callback=app.base_url + PATH,
            base_url=base,
        )
        result = await send_chunk(store, {"sms": channel}, int(draft["id"]), 1, 5000, NOW)
        await channel.http.close()
        return result

    result = run_app({("POST", path): twilio.create, ("GET", path): twilio.list}, test)
    assert result.sent == 3 and len(twilio.created) == 3
    with store.read() as conn:
        statuses = conn.execute(select(sends.c.status, sends.c.provider_id)).all()
        held = conn.execute(select(held_receipts)).all()
    assert sorted(s for s, _ in statuses) == ["delivered"] * 3
    assert {p for _, p in statuses} == {m["sid"] for m in twilio.created}
    assert held == []  # applied and forgotten


def test_a_receipt_for_no_message_of_ours_waits_and_is_pruned(app: LiveApp, store: Store) -> None:
    stranger = "SM" + "7" * 32
    assert signed(app, receipt(stranger, "sent")).status_code == 204
    assert signed(app, receipt(stranger, "delivered")).status_code == 204
    assert signed(app, receipt(stranger, "queued")).status_code == 204  # late: stays
    with store.read() as conn:
        held = conn.execute(select(held_receipts.c.provider_id, held_receipts.c.status)).all()
    assert [tuple(r) for r in held] == [(stranger, "delivered")]
    later = datetime.now(UTC) + timedelta(days=31)
    assert retention.prune(store, later, keep_days=30).held_receipts == 1


def test_a_receipt_whose_effect_failed_is_applied_when_it_comes_again(
    app: LiveApp, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The replay guard and the receipt's effect are one transaction: in the compose
    rehearsal an `http` killed between the two had claimed receipts it never applied,
    and their retries, through the other `http`, were taken for replays."""
    import pingan.http.warnings_api as route

    sent_row(store, "once", "SM" + "3" * 32)
    real, calls = route.apply_receipt, []

    def dies_first(*args: Any) -> int:
        calls.append(args)
        if len(calls) == 1:
            raise RuntimeError("the process died here")
        return real(*args)

    monkeypatch.setattr(route, "apply_receipt", dies_first)
    assert signed(app, receipt("SM" + "3" * 32, "delivered")).status_code == 500
    assert ledger(store)["once"] == ("sent", None)
    assert signed(app, receipt("SM" + "3" * 32, "delivered")).status_code == 204  # retried
    assert ledger(store)["once"] == ("delivered", None)
    assert signed(app, receipt("SM" + "3" * 32, "delivered")).status_code == 204  # a replay
    assert len(calls) == 2


def test_a_receipt_racing_the_record_of_its_send_is_not_lost(store: Store) -> None:
    """Twilio reports 'delivered' while the sender is writing the provider id: the
    receipt's transaction finds no row with that id and holds the receipt, the sender's
    finds nothing held yet; on PostgreSQL both committed and the receipt stayed held for
    good. Now they take turns on the provider id."""
    import threading

    from alerts.ledger import apply_receipt
    from alerts.pipeline import Attempted, Outgoing, claim, queue, record

    sid = "SM" + "5" * 32
    with store.transaction() as conn:
        queue(conn, [Outgoing(Message("race", "+8613800000001", "任务"), "sms")], NOW)
        [due] = claim(conn, NOW, {("sms", True): 10})
    recorded = threading.Event()

    def sender_records() -> None:
        with store.transaction() as conn:
            record(conn, [Attempted(due, provider_id=sid, at=NOW)], {"sms"}, NOW)
        recorded.set()

    with store.transaction() as conn:  # the receipt, not yet committed
        apply_receipt(conn, sid, "delivered", None, NOW)
        thread = threading.Thread(target=sender_records)
        thread.start()
        recorded.wait(1.0)  # on PostgreSQL it used to finish here, seeing nothing held
    thread.join(30)
    assert recorded.is_set()
    with store.read() as conn:
        assert conn.execute(select(sends.c.status)).scalar_one() == "delivered"
        assert conn.execute(select(held_receipts)).all() == []

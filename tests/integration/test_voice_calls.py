"""A silent crew leader is phoned, and the key they press is their answer.

An assignment is made, its acknowledgement deadline passes (the timers fired with a
later clock), the real twilio SDK places the call against Prism serving Twilio's own
OpenAPI description, and Twilio's <Gather> request, signed as Twilio signs it, reaches
the real webhook: 1 acknowledges, 2 declines (and the next crew is asked), another key
asks again, a forged request is refused and changes nothing. The call is placed once
per assignment however often its event comes round; the step the call put off comes
back and, with the leader still silent, passes the task on as before."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import httpx
import pytest
from aiohttp import web
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from alerts.channels.base import Channel
from alerts.channels.factory import build_channels
from alerts.channels.local_outbox import LocalOutboxChannel
from alerts.channels.twilio_voice import TwilioVoiceChannel
from pingan.core import topics
from pingan.dispatch.timers import fire_due_timers
from pingan.settings import Settings, SettingsError, load_settings
from pingan.store import Store
from pingan.store.schema import assignments, audit, local_messages, sends, staff_alerts
from playbooks.registry import PlaybookRegistry
from streams import handlers
from streams.calls import handle_call
from tests.conftest import NOW
from tests.integration.live_app import TWILIO_TOKEN, LiveApp, live_app
from tests.integration.test_channels import ACCOUNT, prism, run_app  # noqa: F401
from tests.integration.test_dispatch_timers import _dispatched
from tests.integration.test_handlers import events

LATE = NOW + timedelta(minutes=11)  # fallen trees, routine: acknowledge within 10 minutes
AFTER_CALL = NOW + timedelta(minutes=14)  # the call gave the leader 3 more minutes
STATUS_URL = "/webhooks/twilio/voice/status"


@pytest.fixture
def app(staffed_store: Store, registry: PlaybookRegistry, tmp_path: Path) -> Iterator[LiveApp]:
    with live_app(staffed_store, registry, tmp_path) as running:
        yield running


def silent_past_deadline(store: Store, index: Any) -> int:
    """An assignment whose crew leader did not acknowledge in time, with voice on: the
    timers fired after the deadline. Returns its id."""
    assignment = _dispatched(store, index)
    fire_due_timers(store, LATE, calls=True)
    return assignment


def answer_path(assignment_id: int) -> str:
    return f"/webhooks/twilio/voice/{assignment_id}/answer"


def post_signed(
    app: LiveApp, path: str, params: dict[str, str], token: str = TWILIO_TOKEN
) -> httpx.Response:
    signature = RequestValidator(token).compute_signature(app.base_url + path, params)
    return app.http.post(path, data=params, headers={"X-Twilio-Signature": signature})


def gather(digits: str, call_sid: str = "CA" + "1" * 32) -> dict[str, str]:
    """The form of Twilio's request to a <Gather> action (a subset of its fields)."""
    return {
        "AccountSid": ACCOUNT,
        "CallSid": call_sid,
        "CallStatus": "in-progress",
        "Direction": "outbound-api",
        "From": "+15005550006",
        "To": "+8610000000101",
        "Digits": digits,
        "FinishedOnKey": "",
    }


def state(store: Store, assignment_id: int) -> str:
    with store.read() as conn:
        return str(
            conn.execute(
                select(assignments.c.state).where(assignments.c.id == assignment_id)
            ).scalar_one()
        )


def call(store: Store, channel: Channel, public_url: str, deliveries: int = 1) -> None:
    """What the calls agent does with every crew.call event (`deliveries` times: a
    redelivery or a restart), in one event loop, as in the worker."""

    async def go() -> None:
        for _ in range(deliveries):
            for event in events(store, topics.CALLS):
                await handle_call(store, channel, event, LATE, public_url)
        if isinstance(channel, TwilioVoiceChannel):
            await channel.http.close()

    asyncio.run(go())


def voice_rows(store: Store) -> list[Any]:
    with store.read() as conn:
        return conn.execute(select(sends).where(sends.c.dedup_key.like("call:%"))).all()


def prism_voice(prism_url: str, public_url: str) -> TwilioVoiceChannel:
    return TwilioVoiceChannel(
        ACCOUNT,
        "secret",
        "+15005550006",
        status_callback=public_url + STATUS_URL,
        base_url=prism_url,
        public_url=public_url,
    )


def test_a_silent_leader_is_called_and_pressing_1_acknowledges(
    staffed_store: Store,
    index: Any,
    app: LiveApp,
    prism: str,  # noqa: F811
) -> None:
    assignment = silent_past_deadline(staffed_store, index)
    assert state(staffed_store, assignment) == "assigned"  # called, not yet passed on
    assert [e["assignment_id"] for e in events(staffed_store, topics.CALLS)] == [assignment]

    channel = prism_voice(prism, app.base_url)
    call(staffed_store, channel, app.base_url, deliveries=2)  # redelivered: called once
    [row] = voice_rows(staffed_store)
    assert (row.dedup_key, row.channel, row.recipient, row.status) == (
        f"call:assignment:{assignment}",
        "voice",
        "+8610000000101",
        "sent",
    )
    assert row.provider_id.startswith("CA") and len(row.provider_id) == 34  # Prism's Call
    assert row.body.startswith(f"平安派单。任务{assignment}，倒伏树木（一般）")

    reply = post_signed(app, answer_path(assignment), gather("1"))
    assert reply.status_code == 200 and reply.headers["Content-Type"].startswith("text/xml")
    said = ElementTree.fromstring(reply.text)
    assert [(e.tag, e.text) for e in said] == [
        ("Say", f"任务{assignment}：已接单，已记录。"),
        ("Hangup", None),
    ]
    assert state(staffed_store, assignment) == "acknowledged"
    with staffed_store.read() as conn:
        actors = conn.execute(
            select(audit.c.actor).where(
                audit.c.action == "assignment.acknowledged", audit.c.entity_id == str(assignment)
            )
        ).all()
    assert [a.actor for a in actors] == ["crew:tree-near via voice"]

    fire_due_timers(staffed_store, AFTER_CALL, calls=True)  # the put-off step: stops
    assert state(staffed_store, assignment) == "acknowledged"
    assert len(events(staffed_store, topics.CALLS)) == 1


def test_pressing_2_declines_and_the_next_crew_is_asked(
    staffed_store: Store, index: Any, app: LiveApp
) -> None:
    assignment = silent_past_deadline(staffed_store, index)
    call(staffed_store, LocalOutboxChannel(staffed_store), app.base_url)
    reply = post_signed(app, answer_path(assignment), gather("2"))
    assert reply.status_code == 200
    assert ElementTree.fromstring(reply.text)[0].text == f"任务{assignment}：已拒绝，已记录。"
    assert state(staffed_store, assignment) == "declined"
    for event in events(staffed_store, topics.CREW_EVENTS):  # as after an SMS decline
        handlers.handle_crew_event(staffed_store, event, LATE)
    with staffed_store.read() as conn:
        crews = conn.execute(
            select(assignments.c.crew_id, assignments.c.state, assignments.c.note).order_by(
                assignments.c.id
            )
        ).all()
    assert [tuple(c) for c in crews] == [
        ("tree-near", "declined", "电话按键拒绝"),
        ("tree-far", "assigned", ""),
    ]


def test_another_key_asks_again_and_changes_nothing(
    staffed_store: Store, index: Any, app: LiveApp
) -> None:
    assignment = silent_past_deadline(staffed_store, index)
    for digits in ("5", "", "12", "*"):
        reply = post_signed(app, answer_path(assignment), gather(digits))
        assert reply.status_code == 200
        again = ElementTree.fromstring(reply.text)
        assert again[0].tag == "Gather"
        assert again[0].get("action") == app.base_url + answer_path(assignment)
        assert again[0][0].text == "未识别您的按键。接单请按1，拒绝请按2。"
    assert state(staffed_store, assignment) == "assigned"


def test_a_forged_answer_is_refused_and_changes_nothing(
    staffed_store: Store, index: Any, app: LiveApp
) -> None:
    assignment = silent_past_deadline(staffed_store, index)
    path = answer_path(assignment)
    forged = post_signed(app, path, gather("1"), token="not-our-token")
    unsigned = app.http.post(path, data=gather("1"))
    # Signed for another assignment's URL, replayed against this one.
    moved = app.http.post(
        path,
        data=gather("1"),
        headers={
            "X-Twilio-Signature": RequestValidator(TWILIO_TOKEN).compute_signature(
                app.base_url + answer_path(assignment + 1), gather("1")
            )
        },
    )
    for reply in (forged, unsigned, moved):
        assert reply.status_code == 403
        assert "X-Twilio-Signature" in reply.json()["error"]
    assert state(staffed_store, assignment) == "assigned"
    with staffed_store.read() as conn:
        refused = conn.execute(
            select(audit.c.entity_id).where(audit.c.action == "webhook.signature_refused")
        ).all()
    assert [r.entity_id for r in refused] == [path] * 3


def test_an_answer_for_no_assignment_is_a_404(app: LiveApp) -> None:
    for raw in ("999", "0"):
        reply = post_signed(app, answer_path(raw), gather("1"))  # type: ignore[arg-type]
        assert reply.status_code == 404
        assert f"assignment '{raw}' not found" in reply.json()["error"]
    assert post_signed(app, "/webhooks/twilio/voice/x1/answer", gather("1")).status_code == 404


def test_a_leader_still_silent_after_the_call_is_passed_on(
    staffed_store: Store, index: Any, app: LiveApp
) -> None:
    assignment = silent_past_deadline(staffed_store, index)
    call(staffed_store, LocalOutboxChannel(staffed_store), app.base_url)
    fire_due_timers(staffed_store, AFTER_CALL - timedelta(seconds=1), calls=True)
    assert state(staffed_store, assignment) == "assigned"
    fire_due_timers(staffed_store, AFTER_CALL, calls=True)
    assert state(staffed_store, assignment) == "timed_out"
    assert len(events(staffed_store, topics.CALLS)) == 1  # the step after the call calls nobody
    with staffed_store.read() as conn:
        [alert] = conn.execute(select(staff_alerts.c.text)).all()
        [recorded] = conn.execute(select(local_messages)).all()
    assert "13 min after dispatch" in alert.text and "已改派下一班组" in alert.text
    assert (recorded.idempotency_key, recorded.recipient) == (
        f"call:assignment:{assignment}",
        "+8610000000101",
    )
    assert recorded.body.endswith("接单请按1，拒绝请按2。")
    # Answering now is too late, and says so.
    reply = post_signed(app, answer_path(assignment), gather("1"))
    assert ElementTree.fromstring(reply.text)[0].text.endswith(
        "该任务已转派其他班组，感谢，无需处理。"
    )


def test_without_voice_the_escalation_is_as_before(staffed_store: Store, index: Any) -> None:
    assignment = _dispatched(staffed_store, index)
    fire_due_timers(staffed_store, LATE)
    assert state(staffed_store, assignment) == "timed_out"
    assert events(staffed_store, topics.CALLS) == []


def test_a_leader_who_answered_meanwhile_is_not_called(
    staffed_store: Store, index: Any, app: LiveApp
) -> None:
    assignment = silent_past_deadline(staffed_store, index)
    assert post_signed(app, answer_path(assignment), gather("1")).status_code == 200  # by SMS, say
    call(staffed_store, LocalOutboxChannel(staffed_store), app.base_url)
    assert voice_rows(staffed_store) == []
    with staffed_store.read() as conn:
        assert conn.execute(select(local_messages)).all() == []


def status(sid: str, value: str) -> dict[str, str]:
    """The form of a call's status callback (a subset of its fields)."""
    return {
        "AccountSid": ACCOUNT,
        "ApiVersion": "2010-04-01",
        "CallSid": sid,
        "CallStatus": value,
        "Direction": "outbound-api",
        "From": "+15005550006",
        "To": "+8610000000101",
    }


def test_the_calls_status_moves_its_ledger_row(
    staffed_store: Store,
    index: Any,
    app: LiveApp,
    prism: str,  # noqa: F811
) -> None:
    assignment = silent_past_deadline(staffed_store, index)
    channel = prism_voice(prism, app.base_url)
    call(staffed_store, channel, app.base_url)
    [row] = voice_rows(staffed_store)
    sid = row.provider_id
    for value in ("ringing", "completed", "in-progress"):  # out of order: never backwards
        assert post_signed(app, STATUS_URL, status(sid, value)).status_code == 204
    assert voice_rows(staffed_store)[0].status == "delivered"
    assert post_signed(app, STATUS_URL, status(sid, "bogus")).status_code == 400
    assert (
        "CallStatus: 'bogus'" in post_signed(app, STATUS_URL, status(sid, "bogus")).json()["error"]
    )
    assert "CallSid" in post_signed(app, STATUS_URL, status("", "busy")).json()["error"]
    forged = post_signed(app, STATUS_URL, status(sid, "no-answer"), token="nope")
    assert forged.status_code == 403
    assert voice_rows(staffed_store)[0].status == "delivered"
    assert state(staffed_store, assignment) == "assigned"


def test_no_answer_is_recorded_and_the_leader_is_not_called_again(
    staffed_store: Store, index: Any, app: LiveApp
) -> None:
    assignment = silent_past_deadline(staffed_store, index)
    with staffed_store.transaction() as conn:  # as if Twilio had taken it
        conn.execute(
            sends.insert().values(
                dedup_key=f"call:assignment:{assignment}",
                channel="voice",
                recipient="+8610000000101",
                body="平安派单。",
                status="sent",
                provider_id="CA" + "2" * 32,
                created_at=LATE,
                updated_at=LATE,
            )
        )
    reply = post_signed(app, STATUS_URL, status("CA" + "2" * 32, "no-answer"))
    assert reply.status_code == 204
    [row] = voice_rows(staffed_store)
    assert (row.status, row.error) == ("undelivered", "call no-answer")


def test_the_exact_call_request_and_one_call_per_assignment(
    staffed_store: Store, index: Any
) -> None:
    """Against a recording server: the form the SDK sends, and a second delivery of
    the same event (or a restart) sends nothing."""
    assignment = silent_past_deadline(staffed_store, index)
    seen: list[list[tuple[str, str]]] = []

    async def calls_resource(request: web.Request) -> web.Response:
        seen.append(list((await request.post()).items()))  # type: ignore[arg-type]
        sid = "CA" + "3" * 32
        return web.json_response(
            {"sid": sid, "account_sid": ACCOUNT, "status": "queued", "to": "x", "from": "y"},
            status=201,
        )

    async def go(base: str) -> None:
        channel = TwilioVoiceChannel(
            ACCOUNT,
            "secret",
            "+15005550006",
            status_callback="https://pingan.example.cn" + STATUS_URL,
            base_url=base,
            public_url="https://pingan.example.cn",
        )
        for event in events(staffed_store, topics.CALLS) * 2:
            await handle_call(staffed_store, channel, event, LATE, "https://pingan.example.cn")
        await channel.http.close()

    run_app({("POST", f"/2010-04-01/Accounts/{ACCOUNT}/Calls.json"): calls_resource}, go)
    [form] = seen
    fields = dict(form)
    assert sorted(fields) == [
        "From",
        "StatusCallback",
        "StatusCallbackMethod",
        "Timeout",
        "To",
        "Twiml",
    ]
    assert (fields["To"], fields["From"], fields["Timeout"]) == (
        "+8610000000101",
        "+15005550006",
        "30",
    )
    assert fields["StatusCallback"] == "https://pingan.example.cn/webhooks/twilio/voice/status"
    assert fields["StatusCallbackMethod"] == "POST"
    twiml = ElementTree.fromstring(fields["Twiml"])
    action = f"https://pingan.example.cn/webhooks/twilio/voice/{assignment}/answer"
    assert twiml[0].get("action") == action and twiml[0].get("numDigits") == "1"
    assert twiml[0][0].get("language") == "zh-CN"
    assert twiml[0][0].text == voice_rows(staffed_store)[0].body


def test_the_voice_channel_is_built_from_settings(tmp_path: Path, store: Store) -> None:
    def built(**values: Any) -> Any:
        return build_channels(Settings(data_dir=tmp_path, **values), store, "token").get("voice")

    assert built() is None
    assert isinstance(built(twilio_voice_from="+15005550006"), LocalOutboxChannel)
    twilio = built(
        twilio_voice_from="+15005550006", twilio_account_sid=ACCOUNT, twilio_from="+15005550001"
    )
    assert isinstance(twilio, TwilioVoiceChannel) and twilio.from_number == "+15005550006"
    with pytest.raises(SettingsError, match="twilio_voice_from"):
        load_settings({"PINGAN_TWILIO_VOICE_FROM": "not a number"}, tmp_path / "none.toml")


def test_a_call_status_whose_effect_failed_is_applied_when_it_comes_again(
    staffed_store: Store, app: LiveApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As for SMS receipts: claimed and applied in one transaction, so a retry after a
    failure (or a process killed) in between is not taken for a replay."""
    import pingan.http.voice as route

    sid = "CA" + "4" * 32
    with staffed_store.transaction() as conn:
        conn.execute(
            sends.insert().values(
                dedup_key="call:assignment:1",
                channel="voice",
                recipient="+8610000000101",
                body="平安派单",
                status="sent",
                provider_id=sid,
                created_at=NOW,
                updated_at=NOW,
            )
        )
    real, calls = route.apply_receipt, []

    def dies_first(*args: Any) -> int:
        calls.append(args)
        if len(calls) == 1:
            raise RuntimeError("the process died here")
        return real(*args)

    monkeypatch.setattr(route, "apply_receipt", dies_first)
    assert post_signed(app, STATUS_URL, status(sid, "completed")).status_code == 500
    assert voice_rows(staffed_store)[0].status == "sent"
    assert post_signed(app, STATUS_URL, status(sid, "completed")).status_code == 204
    assert voice_rows(staffed_store)[0].status == "delivered"
    assert post_signed(app, STATUS_URL, status(sid, "completed")).status_code == 204
    assert len(calls) == 2

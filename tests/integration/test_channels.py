"""Channels on the wire: the real twilio SDK against Prism serving Twilio's OpenAPI
description (valid -> 201, malformed -> 422) and against a recording server for the
exact form; WeCom robot and Official Account against local servers speaking their
JSON, including rate-limit and token-expiry errcodes."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from sqlalchemy import select

from alerts.channels.base import Message, PermanentError, RetryableError
from alerts.channels.twilio_sms import TwilioSmsChannel
from alerts.channels.wechat import OfficialAccountChannel, WeComRobotChannel
from alerts.ledger import SendOutcome, send_once
from pingan.settings import PROJECT_ROOT
from pingan.store import Store
from pingan.store.schema import sends
from tests.e2e.harness import free_port

SPEC = Path(__file__).parent.parent / "data" / "twilio" / "twilio_api_v2010.json"
PRISM = PROJECT_ROOT / ".tools" / "node_modules" / ".bin" / "prism"
ACCOUNT = "AC" + "0123456789abcdef" * 2


@pytest.fixture(scope="module")
def prism() -> Iterator[str]:
    if not PRISM.exists():
        pytest.fail("Prism is missing: `make test` installs it (npm @stoplight/prism-cli)")
    port = free_port()
    proc = subprocess.Popen(
        [str(PRISM), "mock", "-h", "127.0.0.1", "-p", str(port), str(SPEC)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("Prism did not start")
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(10)


def test_twilio_sdk_against_twilios_own_contract(prism: str) -> None:
    async def go() -> None:
        ok = TwilioSmsChannel(
            ACCOUNT,
            "secret",
            from_number="+15005550006",
            status_callback="https://pingan.example.cn/webhooks/twilio/status",
            base_url=prism,
        )
        sid = await ok.send(Message("k1", "+8613812345678", "【漯河城管】暴雪黄色预警"))
        assert sid.startswith("SM") and len(sid) == 34
        malformed = TwilioSmsChannel(
            "AC-not-an-account", "secret", from_number="+15005550006", base_url=prism
        )
        with pytest.raises(PermanentError, match="twilio 422"):
            await malformed.send(Message("k2", "+8613812345678", "x"))
        await ok.http.close()
        await malformed.http.close()

    asyncio.run(go())


def run_app(routes: dict[tuple[str, str], Any], test: Any) -> Any:
    async def main() -> Any:
        app = web.Application()
        for (method, path), handler in routes.items():
            app.router.add_route(method, path, handler)
        runner = web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            return await test(f"http://127.0.0.1:{port}")
        finally:
            await runner.cleanup()

    return asyncio.run(main())


def test_twilio_exact_form_and_error_mapping() -> None:
    seen: list[dict[str, str]] = []
    answers = [
        (201, {"sid": "SM" + "1" * 32, "status": "queued"}),
        (
            400,
            {"code": 21610, "message": "Attempt to send to unsubscribed recipient", "status": 400},
        ),
        (429, {"code": 20429, "message": "Too Many Requests", "status": 429}),
        (503, {"code": 20503, "message": "Service unavailable", "status": 503}),
    ]

    async def messages(request: web.Request) -> web.Response:
        seen.append(
            {
                **dict(await request.post()),
                "auth": request.headers["Authorization"],
                "path": request.path,
            }
        )
        status, body = answers[len(seen) - 1]
        return web.json_response(body, status=status)

    async def test(base: str) -> None:
        channel = TwilioSmsChannel(
            ACCOUNT,
            "secret",
            messaging_service_sid="MG" + "2" * 32,
            status_callback="https://x.example/cb",
            base_url=base,
            validity_s=1800,
        )
        assert await channel.send(Message("k", "+8613812345678", "暴雪预警")) == "SM" + "1" * 32
        with pytest.raises(PermanentError, match="code 21610"):
            await channel.send(Message("k", "+8613812345678", "x"))
        with pytest.raises(RetryableError, match="429"):
            await channel.send(Message("k", "+8613812345678", "x"))
        with pytest.raises(RetryableError, match="503"):
            await channel.send(Message("k", "+8613812345678", "x"))
        await channel.http.close()

    run_app({("POST", "/2010-04-01/Accounts/{sid}/Messages.json"): messages}, test)
    first = seen[0]
    assert first["path"] == f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
    assert {
        k: first[k]
        for k in ("To", "Body", "MessagingServiceSid", "StatusCallback", "ValidityPeriod")
    } == {
        "To": "+8613812345678",
        "Body": "暴雪预警",
        "MessagingServiceSid": "MG" + "2" * 32,
        "StatusCallback": "https://x.example/cb",
        "ValidityPeriod": "1800",
    }
    assert first["auth"].startswith("Basic ")


def test_wecom_robot_json_errcodes_and_pace() -> None:
    bodies: list[Any] = []
    codes = iter([0, 45009, 93000])

    async def robot(request: web.Request) -> web.Response:
        bodies.append({"key": request.query["key"], **(await request.json())})
        code = next(codes)
        return web.json_response({"errcode": code, "errmsg": "ok" if code == 0 else "limited"})

    async def test(base: str) -> None:
        channel = WeComRobotChannel(base)
        assert (
            await channel.send(Message("k1", "robot-key", "**暴雪橙色预警**\n源汇区"))
        ).startswith("wecom-")
        with pytest.raises(RetryableError, match="45009"):
            await channel.send(Message("k2", "robot-key", "x"))
        with pytest.raises(PermanentError, match="93000"):
            await channel.send(Message("k3", "robot-key", "x"))
        await channel.client.aclose()

    run_app({("POST", "/cgi-bin/webhook/send"): robot}, test)
    assert bodies[0] == {
        "key": "robot-key",
        "msgtype": "markdown",
        "markdown": {"content": "**暴雪橙色预警**\n源汇区"},
    }


def test_wecom_robot_waits_rather_than_exceed_20_a_minute() -> None:
    now = [0.0]
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    async def robot(request: web.Request) -> web.Response:
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    async def test(base: str) -> None:
        channel = WeComRobotChannel(base, clock=lambda: now[0])
        original = asyncio.sleep
        asyncio.sleep = fake_sleep  # type: ignore[assignment]
        try:
            for n in range(21):
                now[0] += 1
                await channel.send(Message(f"k{n}", "robot", "x"))
        finally:
            asyncio.sleep = original  # type: ignore[assignment]
        await channel.client.aclose()

    run_app({("POST", "/cgi-bin/webhook/send"): robot}, test)
    assert slept == [40.0]  # the 21st waited until the first left the minute


def test_official_account_token_cache_refresh_and_errors() -> None:
    tokens = iter(["T1", "T2"])
    sends: list[str] = []
    replies = iter(
        [
            {"errcode": 0, "msgid": 7},
            {"errcode": 40001, "errmsg": "invalid token"},
            {"errcode": 0, "msgid": 8},
            {"errcode": 43004, "errmsg": "not subscribed"},
            {"errcode": 45009, "errmsg": "limit"},
        ]
    )

    async def token(request: web.Request) -> web.Response:
        assert request.query["grant_type"] == "client_credential"
        assert (request.query["appid"], request.query["secret"]) == ("wxapp", "wxsecret")
        return web.json_response({"access_token": next(tokens), "expires_in": 7200})

    async def send(request: web.Request) -> web.Response:
        sends.append(request.query["access_token"])
        body = await request.json()
        assert body["touser"] == "openid-1" and body["template_id"] == "TPL"
        return web.json_response(next(replies))

    async def test(base: str) -> None:
        channel = OfficialAccountChannel("wxapp", "wxsecret", "TPL", base)
        message = Message("k", "openid-1", "暴雪预警")
        assert await channel.send(message) == "7"
        assert await channel.send(message) == "8"  # stale token refreshed once, resent
        with pytest.raises(PermanentError, match="43004"):
            await channel.send(message)
        with pytest.raises(RetryableError, match="45009"):
            await channel.send(message)
        await channel.client.aclose()

    run_app(
        {("GET", "/cgi-bin/token"): token, ("POST", "/cgi-bin/message/template/send"): send}, test
    )
    assert sends == ["T1", "T1", "T2", "T2", "T2"]


def test_unreachable_provider_is_retryable() -> None:
    async def go() -> None:
        channel = WeComRobotChannel(
            f"http://127.0.0.1:{free_port()}", client=httpx.AsyncClient(timeout=1)
        )
        with pytest.raises(RetryableError, match="unreachable"):
            await channel.send(Message("k", "robot", "x"))

    asyncio.run(go())


def test_list_lookup_speaks_twilios_contract(prism: str) -> None:
    """Prism checks the list request against Twilio's description and answers with its
    example page; the SDK parses it and nothing there matches our message."""

    async def go() -> None:
        channel = TwilioSmsChannel(ACCOUNT, "secret", from_number="+15005550006", base_url=prism)
        since = datetime(2026, 11, 27, tzinfo=UTC)
        assert (
            await channel.find_sent(Message("k", "+8613812345678", "暴雪预警 不在这里"), since)
            is None
        )
        await channel.http.close()

    asyncio.run(go())


class TwilioMessages:
    """Twilio's Messages resource, kept in memory: create (201) and list (newest first,
    in the 2010 API's page format). Records every create so a test can count sends."""

    def __init__(self) -> None:
        self.created: list[dict[str, Any]] = []
        self.list_status = 200

    def resource(self, to: str, body: str, status: str) -> dict[str, Any]:
        sid = f"SM{len(self.created) + 1:032d}"
        now = format_datetime(datetime.now(UTC), usegmt=True)
        record = {
            "sid": sid,
            "account_sid": ACCOUNT,
            "to": to,
            "from": "+15005550006",
            "body": body,
            "status": status,
            "date_created": now,
            "date_updated": now,
            "date_sent": None,
            "direction": "outbound-api",
            "uri": f"/2010-04-01/Accounts/{ACCOUNT}/Messages/{sid}.json",
        }
        self.created.append(record)
        return record

    async def create(self, request: web.Request) -> web.Response:
        form = await request.post()
        return web.json_response(self.resource(form["To"], form["Body"], "queued"), status=201)

    async def list(self, request: web.Request) -> web.Response:
        if self.list_status != 200:
            error = {"code": 20500, "message": "Internal Server Error", "status": 500}
            return web.json_response(error, status=self.list_status)
        to = request.query.get("To")
        found = [m for m in reversed(self.created) if to is None or m["to"] == to]
        size = int(request.query.get("PageSize", 50))
        page = {
            "messages": found[:size],
            "end": min(len(found), size) - 1,
            "first_page_uri": request.path_qs,
            "next_page_uri": None,
            "page": 0,
            "page_size": size,
            "previous_page_uri": None,
            "start": 0,
            "uri": request.path_qs,
        }
        return web.json_response(page)


def test_pending_row_is_reconciled_not_sent_twice(store: Store) -> None:
    """The crash window: Twilio took the message, we died before writing 'sent'. On
    redelivery the ledger asks Twilio and records the message instead of re-sending;
    where Twilio has nothing, or the earlier one failed, or cannot say, it sends."""
    twilio = TwilioMessages()
    path = "/2010-04-01/Accounts/{sid}/Messages.json"
    now = datetime.now(UTC)

    def crashed_after_send(message: Message, provider_status: str) -> None:
        with store.transaction() as conn:
            conn.execute(
                sends.insert().values(
                    dedup_key=message.idempotency_key,
                    channel="sms",
                    recipient=message.recipient,
                    body=message.body,
                    status="pending",
                    created_at=now,
                    updated_at=now,
                )
            )
        if provider_status:
            twilio.resource(message.recipient, message.body, provider_status)

    async def test(base: str) -> list[SendOutcome]:
        channel = TwilioSmsChannel(ACCOUNT, "secret", from_number="+15005550006", base_url=base)
        taken = Message("crew:1", "+8613800000001", "【平安派单】任务1：倒伏树木")
        crashed_after_send(taken, "sent")
        nothing = Message("crew:2", "+8613800000002", "【平安派单】任务2：井盖缺失")
        crashed_after_send(nothing, "")
        failed = Message("crew:3", "+8613800000003", "【平安派单】任务3：路灯不亮")
        crashed_after_send(failed, "undelivered")
        outcomes = [await send_once(store, channel, m, now) for m in (taken, nothing, failed)]
        twilio.list_status = 500
        unknown = Message("crew:4", "+8613800000004", "【平安派单】任务4：积水")
        crashed_after_send(unknown, "queued")
        outcomes.append(await send_once(store, channel, unknown, now))
        await channel.http.close()
        return outcomes

    outcomes = run_app({("POST", path): twilio.create, ("GET", path): twilio.list}, test)
    assert [o.status for o in outcomes] == ["already_sent", "sent", "sent", "sent"]
    assert outcomes[0].provider_id == "SM" + "1".zfill(32)
    per_recipient = Counter(m["to"] for m in twilio.created)
    # crew 1: once (before the crash); 2: once now; 3 and 4: the earlier one and now.
    assert per_recipient == {
        "+8613800000001": 1,
        "+8613800000002": 1,
        "+8613800000003": 2,
        "+8613800000004": 2,
    }
    with store.read() as conn:
        ledger = dict(conn.execute(select(sends.c.dedup_key, sends.c.status)).all())
    assert ledger == {f"crew:{n}": "sent" for n in (1, 2, 3, 4)}

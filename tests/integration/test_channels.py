"""Channels on the wire: the real twilio SDK against Prism serving Twilio's OpenAPI
description (valid -> 201, malformed -> 422) and against a recording server for the
exact form; WeCom robot and Official Account against local servers speaking their
JSON (exact bodies asserted), including rate-limit and bad-token errcodes; the robot's
pace of 20 a minute on a virtual clock; both built from settings."""

from __future__ import annotations

import asyncio
import itertools
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from sqlalchemy import select

from alerts.channels.base import Message, PermanentError, RetryableError, WarningCard
from alerts.channels.factory import build_channels
from alerts.channels.twilio_sms import TwilioSmsChannel
from alerts.channels.wechat import OfficialAccountChannel, WeComRobotChannel
from alerts.citizen_warnings import draft_texts
from alerts.ledger import SendOutcome
from alerts.pacing import Pace, PacedChannel
from alerts.pipeline import send_once
from alerts.render import warning_card
from pingan.settings import PROJECT_ROOT, SettingsError, load_settings
from pingan.store import Store
from pingan.store.schema import sends
from tests.e2e.harness import free_port, twilio_message_page

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


def test_wecom_robot_exact_json_and_errcodes() -> None:
    bodies: list[Any] = []
    codes = iter([0, 45009, 93000])

    async def robot(request: web.Request) -> web.Response:
        bodies.append({"key": request.query["key"], **(await request.json())})
        code = next(codes)
        return web.json_response({"errcode": code, "errmsg": "ok" if code == 0 else "limited"})

    async def test(base: str) -> None:
        channel = WeComRobotChannel(["robot-key"], base)
        assert (
            await channel.send(Message("k1", "robot-key", "**暴雪橙色预警**\n源汇区"))
        ) == "wecom-k1"
        with pytest.raises(RetryableError, match="45009"):
            await channel.send(Message("k2", "robot-key", "x"))
        with pytest.raises(PermanentError, match="93000"):
            await channel.send(Message("k3", "robot-key", "x"))
        # a key nobody configured is never posted to (data cannot pick the group)
        with pytest.raises(PermanentError, match="not one of the configured robot keys"):
            await channel.send(Message("k4", "someone-elses-robot", "x"))
        await channel.client.aclose()

    run_app({("POST", "/cgi-bin/webhook/send"): robot}, test)
    assert len(bodies) == 3
    assert bodies[0] == {
        "key": "robot-key",
        "msgtype": "markdown",
        "markdown": {"content": "**暴雪橙色预警**\n源汇区"},
    }


class VirtualClockLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock jumps to its next timer instead of sleeping, so a test
    can watch a pace of 20 a minute without waiting minutes. aiolimiter reads
    loop.time() and wakes waiters with call_at, so it runs on this clock unchanged.
    Only for code that waits on nothing but timers (no sockets)."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        real_select = self._selector.select  # type: ignore[attr-defined]

        def select(timeout: float | None = None) -> Any:
            ready = real_select(0)
            if not ready and timeout:
                self.now += timeout
            return ready

        self._selector.select = select  # type: ignore[attr-defined]

    def time(self) -> float:
        return self.now


def test_wecom_robot_never_posts_more_than_20_a_minute() -> None:
    """25 messages to one robot and 3 to another, all at once: the first robot gets one
    every 3 s (never 21 within a minute), the other is not held up by it. WeCom's side
    is an in-process transport answering its JSON, so only timers make time pass."""
    loop = VirtualClockLoop()
    seen: list[tuple[float, str]] = []

    def wecom(request: httpx.Request) -> httpx.Response:
        seen.append((loop.time(), request.url.params["key"]))
        return httpx.Response(200, json={"errcode": 0, "errmsg": "ok"})

    async def burst() -> None:
        client = httpx.AsyncClient(transport=httpx.MockTransport(wecom))
        channel = WeComRobotChannel(["duty", "community"], "https://qyapi.weixin.qq.com", client)
        messages = [Message(f"d{n}", "duty", "x") for n in range(25)]
        messages += [Message(f"c{n}", "community", "x") for n in range(3)]
        await asyncio.gather(*(channel.send(m) for m in messages))
        await client.aclose()

    try:
        loop.run_until_complete(burst())
    finally:
        loop.close()
    duty = [at for at, key in seen if key == "duty"]
    community = [at for at, key in seen if key == "community"]
    assert len(duty) == 25 and duty[0] == 0
    assert all(later - earlier >= 3.0 for earlier, later in itertools.pairwise(duty))
    assert max(sum(1 for t in duty if start <= t < start + 60) for start in duty) == 20
    assert community == [0.0, 3.0, 6.0]  # its own pace, beside the duty robot's


class WeChatOfficialAccount:
    """The two endpoints of WeChat's API the channel uses, answering as WeChat does:
    stable_token in its normal mode (every caller gets the one valid token) and
    message/template/send (errcode 40001 for a token that is not the valid one; other
    errcodes scripted per openid)."""

    def __init__(self) -> None:
        self.token = "T1"
        self.token_requests: list[Any] = []
        self.sends: list[tuple[str, Any]] = []
        self.errcodes: dict[str, int] = {}

    def someone_forced_a_refresh(self) -> None:
        self.token = f"T{int(self.token[1:]) + 1}"

    async def stable_token(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.token_requests.append(body)
        if body.get("force_refresh"):
            self.someone_forced_a_refresh()
        return web.json_response({"access_token": self.token, "expires_in": 7200})

    async def send(self, request: web.Request) -> web.Response:
        token, body = request.query["access_token"], await request.json()
        self.sends.append((token, body))
        if token != self.token:
            return web.json_response(
                {"errcode": 40001, "errmsg": "invalid credential, access_token is invalid"}
            )
        code = self.errcodes.get(body["touser"], 0)
        if code:
            return web.json_response({"errcode": code, "errmsg": f"error {code}"})
        return web.json_response({"errcode": 0, "errmsg": "ok", "msgid": 1000 + len(self.sends)})

    def routes(self) -> dict[tuple[str, str], Any]:
        return {
            ("POST", "/cgi-bin/stable_token"): self.stable_token,
            ("POST", "/cgi-bin/message/template/send"): self.send,
        }


def orange_snow_card() -> WarningCard:
    text = draft_texts("blizzard-orange", ["yuanhui", "yancheng"]).text_zh
    issued = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
    return warning_card(7, "blizzard", "orange", "Alert", ["源汇区", "郾城区"], issued, text)


def test_official_account_template_keywords_and_one_shared_token() -> None:
    wechat = WeChatOfficialAccount()
    wechat.errcodes = {"openid-gone": 43004, "openid-busy": 45009}
    card = orange_snow_card()

    async def test(base: str) -> None:
        # two workers, each with its own channel, as two processes would have
        one, two = (
            OfficialAccountChannel(
                "wxapp", "wxsecret", "TPL", "https://pingan.example.cn", base_url=base
            )
            for _ in range(2)
        )
        assert await one.send(Message("w7:s1", "openid-1", "全文", card)) == "1001"
        assert await two.send(Message("w7:s2", "openid-2", "全文", card)) == "1002"
        assert await one.send(Message("w7:s3", "openid-3", "全文", card)) == "1003"
        # another process forced a refresh: the old token is refused once, fetched
        # again (never forced by us) and the message resent once
        wechat.someone_forced_a_refresh()
        assert await one.send(Message("w7:s4", "openid-4", "全文", card)) == "1005"
        with pytest.raises(PermanentError, match="43004"):
            await one.send(Message("w7:s5", "openid-gone", "全文", card))
        with pytest.raises(RetryableError, match="45009"):
            await one.send(Message("w7:s6", "openid-busy", "全文", card))
        with pytest.raises(PermanentError, match="needs a warning's fields"):
            await one.send(Message("w7:s7", "openid-7", "no card"))
        for channel in (one, two):
            await channel.client.aclose()

    run_app(wechat.routes(), test)
    contract = {"grant_type": "client_credential", "appid": "wxapp", "secret": "wxsecret"}
    assert wechat.token_requests == [{**contract, "force_refresh": False}] * 3
    assert [token for token, _ in wechat.sends] == ["T1", "T1", "T1", "T1", "T2", "T2", "T2"]
    assert wechat.sends[0][1] == {
        "touser": "openid-1",
        "template_id": "TPL",
        "url": "https://pingan.example.cn/warnings/7",
        "client_msg_id": "w7:s1",
        "data": {
            "keyword1": {"value": "暴雪"},
            "keyword2": {"value": "橙色预警"},
            "keyword3": {"value": "源汇区、郾城区"},
            "keyword4": {"value": "2026年11月27日 16:00"},
            "keyword5": {"value": "减少外出，注意防滑，车辆慢行"},
        },
    }
    for _, body in wechat.sends:
        assert "first" not in body["data"] and "remark" not in body["data"]
        assert all(len(v["value"]) <= 20 for v in body["data"].values())


def test_official_account_keeps_the_token_until_5_minutes_before_it_expires() -> None:
    wechat = WeChatOfficialAccount()
    now = [0.0]

    async def test(base: str) -> None:
        channel = OfficialAccountChannel(
            "wxapp", "wxsecret", "TPL", "https://p.example", base_url=base, clock=lambda: now[0]
        )
        for at in (0.0, 6899.0, 6900.0):  # WeChat says 7200 s; renewed from 6900 s on
            now[0] = at
            await channel.send(Message(f"w7:s{at:.0f}", "openid-1", "全文", orange_snow_card()))
        await channel.client.aclose()

    run_app(wechat.routes(), test)
    assert len(wechat.token_requests) == 2


def test_official_account_token_refused_twice_is_retried_later() -> None:
    """WeChat refuses even the token it just handed out (its side is confused): no
    loop of refreshes, and no forced refresh; the message waits for a later try."""
    wechat = WeChatOfficialAccount()

    async def always_refused(request: web.Request) -> web.Response:
        wechat.sends.append((request.query["access_token"], await request.json()))
        return web.json_response({"errcode": 40001, "errmsg": "invalid credential"})

    async def test(base: str) -> None:
        channel = OfficialAccountChannel(
            "wxapp", "wxsecret", "TPL", "https://pingan.example.cn", base_url=base
        )
        with pytest.raises(RetryableError, match="40001"):
            await channel.send(Message("w7:s1", "openid-1", "全文", orange_snow_card()))
        await channel.client.aclose()

    routes = {**wechat.routes(), ("POST", "/cgi-bin/message/template/send"): always_refused}
    run_app(routes, test)
    assert len(wechat.sends) == 2
    assert [r["force_refresh"] for r in wechat.token_requests] == [False, False]


def test_settings_turn_the_wechat_channels_on(store: Store, tmp_path: Path) -> None:
    """The WeCom robot and the Official Account are built from the one settings object,
    environment or TOML; without their settings the local outbox carries WeChat."""
    config = tmp_path / "pingan.toml"
    config.write_text(
        'wecom_robot_keys = ["duty-room", "community-1"]\n'
        'wechat_appid = "wxapp"\nwechat_template_id = "TPL"\n'
        'public_url = "https://pingan.example.cn"\n'
    )
    settings = load_settings(
        {
            "PINGAN_WECHAT_TEMPLATE_KEYS": "event=thing1,level=phrase2,area=thing3,"
            "time=time4,advice=thing5"
        },
        config,
    )
    channels = build_channels(settings, store, "twilio-token")
    robot, paced_account = channels["wecom"], channels["wechat"]
    assert isinstance(paced_account, PacedChannel) and paced_account.pace == Pace(20.0, 20)
    account = paced_account.channel
    assert isinstance(robot, WeComRobotChannel) and isinstance(account, OfficialAccountChannel)
    assert robot.keys == {"duty-room", "community-1"}
    assert robot.base_url == "https://qyapi.weixin.qq.com"
    body = account.payload(Message("w7:s1", "openid-1", "全文", orange_snow_card()))
    assert list(body["data"]) == ["thing1", "phrase2", "thing3", "time4", "thing5"]
    assert body["url"] == "https://pingan.example.cn/warnings/7"
    default = build_channels(load_settings({}, tmp_path / "absent.toml"), store, "t")
    assert "wecom" not in default and default["wechat"].name == "local"
    with pytest.raises(SettingsError, match="wechat_template_keys: no key for advice"):
        load_settings({"PINGAN_WECHAT_TEMPLATE_KEYS": "event=a,level=b,area=c,time=d"}, config)
    with pytest.raises(SettingsError, match="'colour=x' is not field=key"):
        load_settings({"PINGAN_WECHAT_TEMPLATE_KEYS": "colour=x"}, config)


def test_unreachable_provider_is_retryable() -> None:
    async def go() -> None:
        channel = WeComRobotChannel(
            ["robot"], f"http://127.0.0.1:{free_port()}", client=httpx.AsyncClient(timeout=1)
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
        return twilio_message_page(found, request)


def test_pending_row_is_reconciled_not_sent_twice(store: Store) -> None:
    """The crash window: Twilio took the message, we died before writing 'sent'. On
    redelivery the pipeline asks Twilio and records the message instead of re-sending;
    where Twilio has nothing, or the earlier one failed, it sends; while Twilio cannot
    say, the message waits (pending) and is asked about again later."""
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
                    attempt_started_at=now,  # the attempt began; its outcome never written
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
        twilio.list_status = 200  # Twilio can say again: it had it
        later = now + timedelta(minutes=10)
        outcomes.append(await send_once(store, channel, unknown, later))
        await channel.http.close()
        return outcomes

    outcomes = run_app({("POST", path): twilio.create, ("GET", path): twilio.list}, test)
    statuses = [o.status for o in outcomes]
    assert statuses == ["already_sent", "sent", "sent", "retry", "already_sent"]
    assert outcomes[0].provider_id == "SM" + "1".zfill(32)
    assert "not sent again until confirmed" in (outcomes[3].error or "")
    per_recipient = Counter(m["to"] for m in twilio.created)
    # crew 1: once (before the crash); 2: once now; 3: the failed one and now; 4: only
    # the one before the crash (not sent again while Twilio could not say).
    assert per_recipient == {
        "+8613800000001": 1,
        "+8613800000002": 1,
        "+8613800000003": 2,
        "+8613800000004": 1,
    }
    with store.read() as conn:
        ledger = dict(conn.execute(select(sends.c.dedup_key, sends.c.status)).all())
    assert ledger == {f"crew:{n}": "sent" for n in (1, 2, 3, 4)}

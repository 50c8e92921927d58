"""WeChat-style push: a WeCom (企业微信) group robot for staff and community groups, and
WeChat Official Account template messages for subscribers.

WeCom robot: POST JSON {"msgtype": "markdown", ...} to the robot's webhook; errcode 0
is success; a robot takes 20 messages a minute (errcode 45009 when sent too fast); text
up to 2048 bytes. Official Account: an access_token from appid/secret (valid 7200 s,
cached, refreshed on errcode 40001/42001), then message/template/send."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

import httpx

from alerts.channels.base import Message, PermanentError, RetryableError

ROBOT_PER_MINUTE = 20
ROBOT_MAX_BYTES = 2048
TOKEN_EXPIRED = {40001, 42001, 40014}
RATE_LIMITED = {45009, 45011, 45047}


def _truncate_utf8(text: str, limit: int) -> str:
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[: limit - 3].decode("utf-8", errors="ignore") + "…"


class WeComRobotChannel:
    """`recipient` is the robot's webhook key (one robot per group)."""

    name = "wecom"

    def __init__(
        self,
        base_url: str = "https://qyapi.weixin.qq.com",
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.client = client or httpx.AsyncClient(timeout=10)
        self.clock = clock
        self._sent: dict[str, deque[float]] = {}

    async def _pace(self, key: str) -> None:
        """Stay within 20 a minute per robot: wait for the oldest send to age out."""
        window = self._sent.setdefault(key, deque())
        while True:
            now = self.clock()
            while window and now - window[0] >= 60:
                window.popleft()
            if len(window) < ROBOT_PER_MINUTE:
                window.append(now)
                return
            await asyncio.sleep(60 - (now - window[0]))

    async def send(self, message: Message) -> str:
        await self._pace(message.recipient)
        body = {
            "msgtype": "markdown",
            "markdown": {"content": _truncate_utf8(message.body, ROBOT_MAX_BYTES)},
        }
        try:
            reply = await self.client.post(
                f"{self.base_url}/cgi-bin/webhook/send",
                params={"key": message.recipient},
                json=body,
            )
            data = reply.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise RetryableError(f"wecom robot unreachable: {exc.__class__.__name__}") from None
        code = data.get("errcode")
        if code == 0:
            return f"wecom-{message.idempotency_key}"
        if code in RATE_LIMITED or reply.status_code >= 500:
            raise RetryableError(f"wecom errcode {code}: {data.get('errmsg')}")
        raise PermanentError(f"wecom errcode {code}: {data.get('errmsg')}")


class OfficialAccountChannel:
    """`recipient` is the subscriber's openid."""

    name = "wechat"

    def __init__(
        self,
        appid: str,
        secret: str,
        template_id: str,
        base_url: str = "https://api.weixin.qq.com",
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.appid, self.secret, self.template_id = appid, secret, template_id
        self.base_url = base_url.rstrip("/")
        self.client = client or httpx.AsyncClient(timeout=10)
        self.clock = clock
        self._token: tuple[str, float] | None = None  # (token, valid until)
        self._lock = asyncio.Lock()

    async def _access_token(self, refresh: bool = False) -> str:
        async with self._lock:
            if not refresh and self._token and self.clock() < self._token[1]:
                return self._token[0]
            try:
                reply = await self.client.get(
                    f"{self.base_url}/cgi-bin/token",
                    params={
                        "grant_type": "client_credential",
                        "appid": self.appid,
                        "secret": self.secret,
                    },
                )
                data = reply.json()
            except (httpx.HTTPError, ValueError) as exc:
                raise RetryableError(f"wechat token: {exc.__class__.__name__}") from None
            if "access_token" not in data:
                raise RetryableError(
                    f"wechat token errcode {data.get('errcode')}: {data.get('errmsg')}"
                )
            # renew a little early, so a token never expires in flight
            self._token = (
                data["access_token"],
                self.clock() + int(data.get("expires_in", 7200)) - 300,
            )
            return self._token[0]

    async def send(self, message: Message) -> str:
        body = {
            "touser": message.recipient,
            "template_id": self.template_id,
            "data": {
                "first": {"value": message.body[:200]},
                "remark": {"value": "漯河市城市管理局"},
            },
        }
        for attempt in (1, 2):
            token = await self._access_token(refresh=attempt == 2)
            try:
                reply = await self.client.post(
                    f"{self.base_url}/cgi-bin/message/template/send",
                    params={"access_token": token},
                    json=body,
                )
                data = reply.json()
            except (httpx.HTTPError, ValueError) as exc:
                raise RetryableError(f"wechat send: {exc.__class__.__name__}") from None
            code = data.get("errcode")
            if code == 0:
                return str(data.get("msgid"))
            if code in TOKEN_EXPIRED and attempt == 1:
                continue  # the cached token went stale: refresh once and resend
            if code in RATE_LIMITED or code == -1:
                raise RetryableError(f"wechat errcode {code}: {data.get('errmsg')}")
            raise PermanentError(f"wechat errcode {code}: {data.get('errmsg')}")
        raise RetryableError("wechat token refused twice")

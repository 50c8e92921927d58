"""WeChat-style push: a WeCom (企业微信) group robot for staff and community groups, and
WeChat Official Account template messages for subscribers.

WeCom robot: POST JSON {"msgtype": "markdown", ...} to the robot's webhook
(https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=KEY); errcode 0 is success; a
robot takes 20 messages a minute (errcode 45009 when sent too fast); markdown up to
4096 bytes, text 2048 (https://developer.work.weixin.qq.com/document/path/91770).

Official Account: a template message's keywords carry the warning (event, level, area,
time, advice), each at most 20 characters, and nothing goes in `first` or `remark`,
which WeChat stopped showing in May 2023; the card links to the warning's public page
for the full text. The access token comes from the stable-token endpoint, which hands
every caller the same token while it is valid, so no process invalidates another's."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

import httpx
from aiolimiter import AsyncLimiter

from alerts.channels.base import Message, PermanentError, RetryableError
from alerts.pacing import WECOM_ROBOT, limiter
from pingan.settings import WECHAT_TEMPLATE_KEYS

log = logging.getLogger("pingan.alerts.wechat")

ROBOT_MAX_BYTES = 4096  # markdown content, UTF-8
TOKEN_REFUSED = {40001, 40014, 42001}  # invalid credential / invalid token / expired token
RATE_LIMITED = {45009, 45011, 45047}  # too fast, or over the day's quota: later
SYSTEM_BUSY = -1
CLIENT_MSG_ID_MAX = 64  # bytes WeChat keeps of a client_msg_id


def _truncate_utf8(text: str, limit: int) -> str:
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[: limit - 3].decode("utf-8", errors="ignore") + "…"


def _answer(reply: httpx.Response) -> dict[str, Any]:
    data = reply.json()
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return data


class WeComRobotChannel:
    """`recipient` is a robot's webhook key (one robot per group). Only the keys it was
    built with are posted to: data cannot point it at a stranger's group. A key is a
    credential (anyone holding it can post), so none is ever logged."""

    name = "wecom"

    def __init__(
        self,
        keys: Collection[str],
        base_url: str = "https://qyapi.weixin.qq.com",
        client: httpx.AsyncClient | None = None,
    ) -> None:
        if not keys:
            raise ValueError("a WeCom robot channel needs at least one robot key")
        self.keys = frozenset(keys)
        self.base_url = base_url.rstrip("/")
        self.client = client or httpx.AsyncClient(timeout=10)
        self._limiters: dict[str, AsyncLimiter] = {}

    def _limiter(self, key: str) -> AsyncLimiter:
        """One send every 3 s per robot (alerts/pacing.py WECOM_ROBOT). A bucket of 20 per
        60 s would let a burst of 20 through and 20 more as it drains, 40 within one
        minute; one at a time never puts more than 20 in any minute."""
        if key not in self._limiters:
            self._limiters[key] = limiter(WECOM_ROBOT)
        return self._limiters[key]

    async def send(self, message: Message) -> str:
        key = message.recipient
        if key not in self.keys:
            raise PermanentError("wecom: not one of the configured robot keys")
        body = {
            "msgtype": "markdown",
            "markdown": {"content": _truncate_utf8(message.body, ROBOT_MAX_BYTES)},
        }
        async with self._limiter(key):
            try:
                reply = await self.client.post(
                    f"{self.base_url}/cgi-bin/webhook/send", params={"key": key}, json=body
                )
                data = _answer(reply)
            except (httpx.HTTPError, ValueError) as exc:
                raise RetryableError(f"wecom robot unreachable: {exc.__class__.__name__}") from None
        code = data.get("errcode")
        if code == 0:
            return f"wecom-{message.idempotency_key}"
        if code in RATE_LIMITED or code == SYSTEM_BUSY or reply.status_code >= 500:
            raise RetryableError(f"wecom errcode {code}: {data.get('errmsg')}")
        raise PermanentError(f"wecom errcode {code}: {data.get('errmsg')}")


def client_msg_id(key: str) -> str:
    """Our idempotency key as WeChat's client_msg_id (the same openid and id within 10
    minutes is sent once), hashed when it is longer than WeChat keeps."""
    if len(key.encode()) <= CLIENT_MSG_ID_MAX:
        return key
    return hashlib.sha256(key.encode()).hexdigest()


class OfficialAccountChannel:
    """`recipient` is the subscriber's openid; the message must carry a warning card
    (alerts/render.py), whose fields fill the template's keywords."""

    name = "wechat"

    def __init__(
        self,
        appid: str,
        secret: str,
        template_id: str,
        page_base: str,
        keys: Mapping[str, str] = WECHAT_TEMPLATE_KEYS,
        base_url: str = "https://api.weixin.qq.com",
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.appid, self.secret, self.template_id = appid, secret, template_id
        self.page_base = page_base.rstrip("/")
        self.keys = dict(keys)
        self.base_url = base_url.rstrip("/")
        self.client = client or httpx.AsyncClient(timeout=10)
        self.clock = clock
        self._token: tuple[str, float] | None = None  # (token, use until)
        self._lock = asyncio.Lock()

    async def _access_token(self, refused: str | None = None) -> str:
        """The account's token from the stable-token endpoint, kept until 5 minutes
        before it expires (the endpoint hands out the next one in those 5 minutes, and
        both work meanwhile). `refused`: WeChat rejected that token, so ask again.

        Contract (POST JSON grant_type=client_credential, appid, secret, force_refresh;
        answers access_token and expires_in, or errcode/errmsg):
        https://developers.weixin.qq.com/doc/service/api/base/api_getstableaccesstoken
        force_refresh stays false: forcing would invalidate the token every other process
        is using, and is allowed 20 times a day."""
        async with self._lock:
            cached = self._token
            if cached and cached[0] != refused and self.clock() < cached[1]:
                return cached[0]
            try:
                reply = await self.client.post(
                    f"{self.base_url}/cgi-bin/stable_token",
                    json={
                        "grant_type": "client_credential",
                        "appid": self.appid,
                        "secret": self.secret,
                        "force_refresh": False,
                    },
                )
                data = _answer(reply)
            except (httpx.HTTPError, ValueError) as exc:
                raise RetryableError(f"wechat token: {exc.__class__.__name__}") from None
            token = data.get("access_token")
            if not isinstance(token, str) or not token:
                raise RetryableError(
                    f"wechat token errcode {data.get('errcode')}: {data.get('errmsg')}"
                )
            lifetime = int(data.get("expires_in", 7200))
            self._token = (token, self.clock() + max(lifetime - 300, 0))
            return token

    def payload(self, message: Message) -> dict[str, Any]:
        """The exact JSON of message/template/send for this message: keywords only."""
        card = message.card
        if card is None:
            raise PermanentError("wechat: a template message needs a warning's fields")
        return {
            "touser": message.recipient,
            "template_id": self.template_id,
            "url": f"{self.page_base}/warnings/{card.warning_id}",
            "client_msg_id": client_msg_id(message.idempotency_key),
            "data": {self.keys[name]: {"value": value} for name, value in card.fields().items()},
        }

    async def _post(self, body: dict[str, Any], token: str) -> dict[str, Any]:
        try:
            reply = await self.client.post(
                f"{self.base_url}/cgi-bin/message/template/send",
                params={"access_token": token},
                json=body,
            )
            return _answer(reply)
        except (httpx.HTTPError, ValueError) as exc:
            raise RetryableError(f"wechat send: {exc.__class__.__name__}") from None

    async def send(self, message: Message) -> str:
        """https://developers.weixin.qq.com/doc/service/api/notify/template/api_sendtemplatemessage
        A refused token is fetched again once and the message resent once."""
        body = self.payload(message)
        token = await self._access_token()
        data = await self._post(body, token)
        if data.get("errcode") in TOKEN_REFUSED:
            log.info("wechat token refused (errcode %s): fetching it again", data["errcode"])
            data = await self._post(body, await self._access_token(refused=token))
        code = data.get("errcode")
        if code == 0:
            return str(data.get("msgid"))
        if code in RATE_LIMITED or code in TOKEN_REFUSED or code == SYSTEM_BUSY:
            raise RetryableError(f"wechat errcode {code}: {data.get('errmsg')}")
        raise PermanentError(f"wechat errcode {code}: {data.get('errmsg')}")

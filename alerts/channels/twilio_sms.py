"""SMS through Twilio's Messages API with the real `twilio` SDK (async).

The SDK has no base-URL setting, so requests go through an httpx-based AsyncHttpClient
that can redirect api.twilio.com elsewhere (a test server speaking Twilio's API).
Twilio's error codes decide whether a failure is worth retrying."""

from __future__ import annotations

import asyncio
import logging
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

import httpx
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http import AsyncHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from alerts.channels.base import Message, PermanentError, RetryableError, SendError
from alerts.retry import retry_after_s
from pingan.privacy import mask_phone

log = logging.getLogger("pingan.alerts.twilio")

# https://www.twilio.com/docs/api/errors: the recipient cannot or will not receive.
PERMANENT_CODES = {
    21211,  # invalid 'To' number
    21408,  # region not enabled
    21610,  # recipient replied STOP (opted out)
    21612,  # cannot route to this number
    21614,  # not a mobile number
    30003,
    30005,
    30006,  # unreachable, unknown, landline
}
OPTED_OUT = 21610
# A message in one of these states did not reach the handset: sending again is right.
NOT_DELIVERED = {"failed", "undelivered", "canceled"}
CLOCK_SKEW = timedelta(minutes=2)
DEADLINE_FACTOR = 3  # a request is abandoned after this many times its own timeout
# The Retry-After of the last answer in this task: the SDK raises its error without the
# headers, and a chunk's sends run as concurrent tasks, so a per-client field would mix
# them up; a context variable is per task.
_RETRY_AFTER: ContextVar[str | None] = ContextVar("twilio_retry_after", default=None)


def refused(
    exc: TwilioRestException, recipient: str, retry_after: float | None = None
) -> SendError:
    """Twilio's refusal as our error: permanent for the recipient's own codes and other
    client errors but 429, retryable for the rest, not sooner than `retry_after`
    seconds when Twilio said (the phone number masked)."""
    code = exc.code or 0
    where = f"twilio {exc.status} code {code} to {mask_phone(recipient)}"
    if code in PERMANENT_CODES or (400 <= exc.status < 500 and exc.status != 429):
        return PermanentError(f"{where}: {exc.msg}")
    return RetryableError(f"{where}: {exc.msg}", retry_after_s=retry_after)


class HttpxTwilioClient(AsyncHttpClient):
    def __init__(self, base_url: str | None = None, timeout: float = 10.0) -> None:
        super().__init__(logger=log, is_async=True, timeout=timeout)
        self.base = urlsplit(base_url) if base_url else None
        self.client = httpx.AsyncClient(timeout=timeout)
        self._closing: set[asyncio.Task[None]] = set()

    async def request(
        self,
        method,
        uri,
        params=None,
        data=None,
        headers=None,  # type: ignore[no-untyped-def, override]
        auth=None,
        timeout=None,
        allow_redirects=False,
    ) -> Response:
        if self.base is not None:
            parts = urlsplit(uri)
            uri = urlunsplit(
                (
                    self.base.scheme,
                    self.base.netloc,
                    self.base.path.rstrip("/") + parts.path,
                    parts.query,
                    "",
                )
            )
        client, limit = self.client, timeout or self.timeout
        try:
            reply = await asyncio.wait_for(
                client.request(
                    method,
                    uri,
                    params=params,
                    data=data,
                    headers=headers,
                    auth=auth,
                    timeout=limit,
                    follow_redirects=allow_redirects,
                ),
                DEADLINE_FACTOR * limit,
            )
        except TimeoutError:
            # httpcore's pool can wedge after a burst of timeouts (waiters for a
            # connection never woken, past their own pool timeout): a fresh pool.
            if self.client is client:
                self.client = httpx.AsyncClient(timeout=self.timeout)
                closing = asyncio.create_task(client.aclose())
                self._closing.add(closing)
                closing.add_done_callback(self._closing.discard)
                log.warning("twilio http pool renewed after a request outlived its deadline")
            raise httpx.ReadTimeout("no answer within the deadline") from None
        _RETRY_AFTER.set(reply.headers.get("Retry-After"))
        return Response(reply.status_code, reply.text, dict(reply.headers))

    async def close(self) -> None:
        await self.client.aclose()


class TwilioSmsChannel:
    name = "sms"

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        from_number: str = "",
        messaging_service_sid: str = "",
        status_callback: str = "",
        base_url: str | None = None,
        validity_s: int = 3600,
        timeout_s: float = 10.0,
    ) -> None:
        if not from_number and not messaging_service_sid:
            raise ValueError("a From number or a Messaging Service SID is required")
        self.http = HttpxTwilioClient(base_url, timeout=timeout_s)
        self.client = Client(account_sid, auth_token, http_client=self.http)
        self.from_number, self.service = from_number, messaging_service_sid
        self.status_callback, self.validity_s = status_callback, validity_s

    async def send(self, message: Message) -> str:
        extra: dict[str, object] = {"validity_period": self.validity_s}
        if self.service:
            extra["messaging_service_sid"] = self.service
        else:
            extra["from_"] = self.from_number
        if self.status_callback:
            extra["status_callback"] = self.status_callback
        try:
            created = await self.client.messages.create_async(
                to=message.recipient, body=message.body, **extra
            )
        except TwilioRestException as exc:
            wait = retry_after_s(_RETRY_AFTER.get(), datetime.now(UTC))
            raise refused(exc, message.recipient, wait) from None
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            # no connection: nothing went out
            raise RetryableError(f"twilio unreachable: {exc.__class__.__name__}") from None
        except httpx.HTTPError as exc:
            # the request may have gone out and no answer came (a timeout, a connection
            # dropped mid-answer): Twilio may have it
            name = exc.__class__.__name__
            raise RetryableError(f"twilio gave no answer: {name}", unsure=True) from None
        return str(created.sid)

    async def find_sent(self, message: Message, since: datetime) -> str | None:
        """The sid of a message Twilio took with this body for this recipient since
        `since` (and did not fail), or None. Newest first; a trial account's prefix is
        allowed before the body."""
        try:
            recent = await self.client.messages.list_async(to=message.recipient, limit=20)
        except TwilioException as exc:  # a page that is not 200 raises the base class
            raise RetryableError(f"twilio could not list messages: {exc}") from None
        except httpx.HTTPError as exc:
            raise RetryableError(f"twilio unreachable: {exc.__class__.__name__}") from None
        for found in recent:
            created = found.date_created
            if (
                (found.body or "").endswith(message.body)
                and found.status not in NOT_DELIVERED
                and (created is None or created >= since - CLOCK_SKEW)
            ):
                return str(found.sid)
        return None

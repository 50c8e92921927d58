"""Fetching a feed document: conditional GET, timeouts, retries with exponential
backoff and jitter (Retry-After honoured), a size limit, and a content-type check."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import httpx

from pingan.intake.feeds.cap import MAX_BYTES

XML_TYPES = (
    "application/xml",
    "text/xml",
    "application/cap+xml",
    "application/atom+xml",
    "application/rss+xml",
)
JSON_TYPES = ("application/json",)
RETRY_STATUSES = {429, 500, 502, 503, 504}
MAX_RETRY_AFTER_S = 120.0


class FetchError(Exception):
    """The document could not be fetched; `permanent` when retrying will not help."""

    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class Fetched:
    not_modified: bool
    body: bytes = b""
    etag: str | None = None
    last_modified: str | None = None
    attempts: int = 1


def _retry_after(reply: httpx.Response) -> float | None:
    raw = reply.headers.get("Retry-After")
    if not raw:
        return None
    try:
        return min(float(raw), MAX_RETRY_AFTER_S)
    except ValueError:
        try:
            import time

            return max(
                0.0, min(parsedate_to_datetime(raw).timestamp() - time.time(), MAX_RETRY_AFTER_S)
            )
        except (TypeError, ValueError):
            return None


def backoff_s(attempt: int, base: float, cap: float, rng: Callable[[], float]) -> float:
    """Exponential backoff with full jitter between half and the whole step."""
    return min(cap, base * 2**attempt) * (0.5 + rng() / 2)


class Fetcher:
    def __init__(
        self,
        client: httpx.AsyncClient,
        retries: int = 3,
        backoff_base_s: float = 0.5,
        backoff_cap_s: float = 30.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.client = client
        self.retries = retries
        self.base, self.cap = backoff_base_s, backoff_cap_s
        self.sleep, self.rng = sleep, rng

    async def get(
        self,
        url: str,
        accept: tuple[str, ...],
        etag: str | None = None,
        last_modified: str | None = None,
        timeout_s: float = 10.0,
    ) -> Fetched:
        headers = {"Accept": ", ".join(accept)}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        last_error = "no attempt made"
        for attempt in range(self.retries + 1):
            wait: float | None = None
            try:
                async with self.client.stream(
                    "GET", url, headers=headers, timeout=timeout_s
                ) as reply:
                    if reply.status_code == 304:
                        return Fetched(
                            True, etag=etag, last_modified=last_modified, attempts=attempt + 1
                        )
                    if reply.status_code in RETRY_STATUSES:
                        last_error = f"HTTP {reply.status_code}"
                        wait = _retry_after(reply)
                    elif reply.status_code >= 400:
                        raise FetchError(f"HTTP {reply.status_code} from {url}", permanent=True)
                    else:
                        ctype = reply.headers.get("Content-Type", "").split(";")[0].strip()
                        if ctype.lower() not in accept:
                            raise FetchError(
                                f"content type {ctype or 'missing'!r} is not one "
                                f"of {', '.join(accept)}",
                                permanent=True,
                            )
                        body = await _read_limited(reply)
                        return Fetched(
                            False,
                            body,
                            reply.headers.get("ETag"),
                            reply.headers.get("Last-Modified"),
                            attempt + 1,
                        )
            except httpx.TimeoutException:
                last_error = f"timed out after {timeout_s:g}s"
            except httpx.TransportError as exc:
                last_error = f"connection failed: {exc.__class__.__name__}"
            if attempt < self.retries:
                await self.sleep(
                    wait if wait is not None else backoff_s(attempt, self.base, self.cap, self.rng)
                )
        raise FetchError(f"{url}: {last_error} ({self.retries + 1} attempts)")


async def _read_limited(reply: httpx.Response) -> bytes:
    data = bytearray()
    async for chunk in reply.aiter_bytes():
        data += chunk
        if len(data) > MAX_BYTES:
            raise FetchError(f"document larger than {MAX_BYTES} bytes; refused", permanent=True)
    return bytes(data)

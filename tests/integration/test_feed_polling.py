"""Pollers against a local HTTP server (not a mocked function): conditional GET,
retries with backoff, Retry-After, timeouts, garbage, size limits, dedup."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from sqlalchemy import select

from pingan.intake.feeds.fetch import Fetcher, FetchError
from pingan.intake.feeds.poller import FeedPoller
from pingan.settings import FeedConfig
from pingan.store import Store, component_state
from pingan.store.schema import components, outbox, warning_messages
from tests.e2e.harness import free_port

FEEDS = Path(__file__).parent.parent / "data" / "feeds"
YELLOW = (FEEDS / "cma-blizzard-yellow.cap").read_bytes()
XML = "application/cap+xml"


class Server:
    """A feed server whose answers the test scripts; it records what it was asked."""

    def __init__(self) -> None:
        self.requests: list[dict[str, str]] = []
        self.handlers: dict[str, Callable[[web.Request], Awaitable[web.StreamResponse]]] = {}

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append({"path": request.path, **dict(request.headers)})
        return await self.handlers[request.path](request)


def run_with_server(test: Callable[[Server, str], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        server = Server()
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", server.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            return await test(server, f"http://127.0.0.1:{port}")
        finally:
            await runner.cleanup()

    return asyncio.run(main())


Answer = Callable[[], web.StreamResponse | Awaitable[web.StreamResponse]]


def sequence(*answers: Answer):  # type: ignore[no-untyped-def]
    """Answer requests in this order, the last one for ever. Each answer is a factory:
    an aiohttp response object can be sent only once."""
    queue = list(answers)

    async def handler(request: web.Request) -> web.StreamResponse:
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        made = answer()
        return await made if asyncio.iscoroutine(made) else made  # type: ignore[return-value]

    return handler


def cap_reply(body: bytes = YELLOW, etag: str = '"v1"') -> web.Response:
    return web.Response(body=body, content_type=XML, headers={"ETag": etag})


class SleepRecorder:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def poller(
    store: Store,
    index,
    base: str,
    kind: str = "cap",
    path: str = "/cap.xml",  # type: ignore[no-untyped-def]
    client: httpx.AsyncClient | None = None,
    sleep: SleepRecorder | None = None,
    timeout_s: float = 5.0,
    districts: tuple[str, ...] = (),
) -> FeedPoller:
    feed = FeedConfig("test-feed", kind, base + path, 60, districts, timeout_s, retries=2)
    fetcher = Fetcher(
        client or httpx.AsyncClient(), retries=2, sleep=sleep or SleepRecorder(), rng=lambda: 0.0
    )
    return FeedPoller(feed, store, lambda: index, fetcher)


def warning_rows(store: Store) -> list[Any]:
    with store.read() as conn:
        return conn.execute(
            select(warning_messages.c.warning_id, warning_messages.c.msg_type)
        ).all()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Store:
    store = Store(f"sqlite:///{tmp_path / 'feeds.db'}")
    store.create_schema()
    return store


def test_etag_reused_and_304_changes_nothing(sqlite_store: Store, index) -> None:
    async def test(server: Server, base: str) -> None:
        server.handlers["/cap.xml"] = sequence(cap_reply, lambda: web.Response(status=304))
        p = poller(sqlite_store, index, base)
        first = await p.poll()
        second = await p.poll()
        assert first.accepted == ["41110041600000_20260120053000 Alert blizzard yellow"]
        assert second.accepted == [] and second.duplicates == 0
        assert "If-None-Match" not in server.requests[0]
        assert server.requests[1]["If-None-Match"] == '"v1"'

    run_with_server(test)
    assert warning_rows(sqlite_store) == [("41110041600000_20260120053000", "Alert")]
    assert component_state(sqlite_store, "feed:test-feed") == "ok"


def test_a_repolled_alert_is_not_a_new_event(sqlite_store: Store, index) -> None:
    async def test(server: Server, base: str) -> None:
        # The server forgot its ETag (new deployment): same alert, new validator.
        server.handlers["/cap.xml"] = sequence(
            lambda: cap_reply(etag='"a"'), lambda: cap_reply(etag='"b"')
        )
        p = poller(sqlite_store, index, base)
        await p.poll()
        again = await p.poll()
        assert again.duplicates == 1 and again.accepted == []

    run_with_server(test)
    with sqlite_store.read() as conn:
        assert len(conn.execute(select(outbox)).all()) == 1


def test_5xx_is_retried_with_exponential_backoff(sqlite_store: Store, index) -> None:
    sleep = SleepRecorder()

    async def test(server: Server, base: str) -> None:
        server.handlers["/cap.xml"] = sequence(
            lambda: web.Response(status=503), lambda: web.Response(status=502), cap_reply
        )
        result = await poller(sqlite_store, index, base, sleep=sleep).poll()
        assert result.accepted and len(server.requests) == 3

    run_with_server(test)
    assert sleep.delays == [0.25, 0.5]  # base 0.5 s, doubling, jitter drawn as 0


def test_retry_after_is_honoured(sqlite_store: Store, index) -> None:
    sleep = SleepRecorder()

    async def test(server: Server, base: str) -> None:
        server.handlers["/cap.xml"] = sequence(
            lambda: web.Response(status=429, headers={"Retry-After": "7"}), cap_reply
        )
        assert (await poller(sqlite_store, index, base, sleep=sleep).poll()).accepted

    run_with_server(test)
    assert sleep.delays == [7.0]


def test_feed_down_after_retries_is_logged_and_recorded(sqlite_store: Store, index) -> None:
    async def test(server: Server, base: str) -> None:
        server.handlers["/cap.xml"] = sequence(lambda: web.Response(status=500))
        result = await poller(sqlite_store, index, base).poll()
        assert len(server.requests) == 3
        assert "HTTP 500 (3 attempts)" in result.ignored[0]

    run_with_server(test)
    with sqlite_store.read() as conn:
        row = conn.execute(select(components).where(components.c.name == "feed:test-feed")).one()
    assert row.state == "down" and "HTTP 500 (3 attempts)" in row.detail


def test_timeouts(sqlite_store: Store, index) -> None:
    async def slow() -> web.Response:
        await asyncio.sleep(1.5)
        return cap_reply()

    async def test(server: Server, base: str) -> None:
        server.handlers["/cap.xml"] = sequence(slow)
        result = await poller(sqlite_store, index, base, timeout_s=0.2).poll()
        assert "timed out after 0.2s (3 attempts)" in result.ignored[0]

    run_with_server(test)
    assert component_state(sqlite_store, "feed:test-feed") == "down"


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (
            lambda: web.Response(text="<html>maintenance</html>", content_type="text/xml"),
            "neither a CAP alert nor an Atom/RSS feed",
        ),
        (
            lambda: web.Response(text="<alert", content_type="application/xml"),
            "not well-formed XML",
        ),
        (
            lambda: web.Response(text="<p>hello</p>", content_type="text/html"),
            "content type 'text/html' is not one of",
        ),
        (
            lambda: web.Response(
                body=b"<a>" + b" " * (1024 * 1024 + 10) + b"</a>", content_type="application/xml"
            ),
            "larger than",
        ),
        (lambda: web.Response(status=404), "HTTP 404"),
    ],
)
def test_garbage_and_wrong_shapes_are_refused(sqlite_store: Store, index, reply, reason) -> None:  # type: ignore[no-untyped-def]
    async def test(server: Server, base: str) -> None:
        server.handlers["/cap.xml"] = sequence(reply)
        result = await poller(sqlite_store, index, base).poll()
        assert reason in result.ignored[0]
        assert len(server.requests) == 1, "no retry for an answer that will not change"

    run_with_server(test)
    assert warning_rows(sqlite_store) == []


def test_index_feed_follows_links_once(sqlite_store: Store, index) -> None:
    atom = """<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><id>f</id>
      <title>Luohe signals</title><updated>2026-01-20T05:30:00+08:00</updated>
      <entry><id>e1</id><title>暴雪黄色</title><updated>2026-01-20T05:30:00+08:00</updated>
      <link href="BASE/alerts/1.cap"/></entry></feed>"""

    async def test(server: Server, base: str) -> None:
        server.handlers["/index.atom"] = sequence(
            lambda: web.Response(
                text=atom.replace("BASE", base), content_type="application/atom+xml"
            )
        )
        server.handlers["/alerts/1.cap"] = sequence(cap_reply)
        p = poller(sqlite_store, index, base, kind="cap-index", path="/index.atom")
        assert (await p.poll()).accepted
        await p.poll()
        assert [r["path"] for r in server.requests] == [
            "/index.atom",
            "/alerts/1.cap",
            "/index.atom",
        ]

    run_with_server(test)
    assert len(warning_rows(sqlite_store)) == 1


def test_open_meteo_poll_announces_a_threshold_crossing(sqlite_store: Store, index) -> None:
    rising = (FEEDS / "open-meteo-snow-rising.json").read_bytes()

    async def test(server: Server, base: str) -> None:
        server.handlers["/v1/forecast"] = sequence(
            lambda: web.Response(body=rising, content_type="application/json")
        )
        p = poller(
            sqlite_store,
            index,
            base,
            kind="open-meteo",
            path="/v1/forecast?latitude={lat}&longitude={lon}&hourly=snowfall",
            districts=("yuanhui",),
        )
        result = await p.poll()
        assert result.accepted == ["yuanhui snowfall_mm/12h reached at 6"]
        assert server.requests[0]["path"] == "/v1/forecast"

    run_with_server(test)
    with sqlite_store.read() as conn:
        [event] = conn.execute(select(outbox.c.payload)).scalars().all()
    assert event["threshold"] == {
        "metric": "snowfall_mm",
        "window_h": 12,
        "value": 6.0,
        "district": "yuanhui",
        "at": event["threshold"]["at"],
        "cleared": False,
    }


def test_fetch_error_is_permanent_only_when_retrying_cannot_help() -> None:
    assert FetchError("x", permanent=True).permanent and not FetchError("y").permanent

"""A recorded snow event through the real feed pollers on the embedded stack:
forecast snowfall rises past 4 mm in 12 h, the observatory issues 暴雪黄色, upgrades it
to 橙色, cancels it, and the snow stops. Yuanhui's snow response is one incident that
opens, is upgraded twice and resolves."""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web

from tests.conftest import ROSTER
from tests.e2e.harness import Stack, free_port, wait_for

pytestmark = pytest.mark.e2e
FEEDS = Path(__file__).parent.parent / "data" / "feeds"
CORPUS = Path(__file__).parent.parent / "data" / "cap-corpus"


class FeedServer:
    """The observatory and the forecast service, on localhost, in a thread. `now`
    names the documents currently served."""

    def __init__(self) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.cap = CORPUS / "weather.cap"  # a foreign alert: recorded, not acted on
        self.forecast = FEEDS / "open-meteo-quiet.json"
        self._loop = asyncio.new_event_loop()
        started = threading.Event()
        threading.Thread(target=self._serve, args=(started,), daemon=True).start()
        started.wait(10)

    def _serve(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_get("/cap.xml", self._cap)
        app.router.add_get("/v1/forecast", self._forecast)
        self._runner = web.AppRunner(app)
        self._loop.run_until_complete(self._runner.setup())
        self._loop.run_until_complete(web.TCPSite(self._runner, "127.0.0.1", self.port).start())
        started.set()
        self._loop.run_forever()

    @staticmethod
    def _conditional(request: web.Request, path: Path, content_type: str) -> web.Response:
        etag = f'"{path.name}"'
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        # The recorded documents are dated 2026-01-20; serve them as if issued today, so
        # their expiry lies ahead (an expired warning is, rightly, never in force).
        tomorrow = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%d").encode()
        body = path.read_bytes().replace(b"2026-01-20", tomorrow)
        return web.Response(body=body, content_type=content_type, headers={"ETag": etag})

    async def _cap(self, request: web.Request) -> web.Response:
        return self._conditional(request, self.cap, "application/cap+xml")

    async def _forecast(self, request: web.Request) -> web.Response:
        return self._conditional(request, self.forecast, "application/json")

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)


def test_recorded_snow_event_open_upgrade_resolve(tmp_path: Path) -> None:
    server = FeedServer()
    feeds = [
        {"name": "observatory", "kind": "cap", "url": f"{server.base}/cap.xml", "interval_s": 1},
        {
            "name": "open-meteo",
            "kind": "open-meteo",
            "interval_s": 1,
            "districts": ["yuanhui"],
            "url": f"{server.base}/v1/forecast?latitude={{lat}}&longitude={{lon}}"
            "&hourly=precipitation,snowfall,temperature_2m,wind_speed_10m,wind_gusts_10m",
        },
    ]
    stack = Stack(tmp_path, {"PINGAN_FEEDS": json.dumps(feeds), "PINGAN_ROSTER_FILE": str(ROSTER)})
    try:

        def yuanhui_snow() -> list[dict]:
            return [
                i
                for i in stack.incidents()
                if i["playbook"]["id"] == "snow-removal" and i["district"] == "yuanhui"
            ]

        def level_is(level: str) -> dict | None:
            found = yuanhui_snow()
            return found[0] if found and found[0]["level"] == level else None

        # Both feeds polled and healthy; the foreign alert changed nothing.
        wait_for(lambda: _feed_state(stack, "observatory") == "ok", what="observatory polled")
        wait_for(lambda: _feed_state(stack, "open-meteo") == "ok", what="forecast polled")
        assert stack.incidents() == []

        server.forecast = FEEDS / "open-meteo-snow-rising.json"
        opened = wait_for(
            lambda: level_is("yellow") or level_is("blue"),
            timeout=30,
            what="snow incident from the forecast",
        )
        # 6.0 mm in 12 h reaches both blue (4 mm) and yellow (6 mm): the stronger wins.
        assert opened["level"] == "yellow" and opened["scope"] == "district"

        server.cap = FEEDS / "cma-blizzard-yellow.cap"
        wait_for(
            lambda: [w for w in _warnings(stack) if w["level"] == "yellow"],
            what="yellow warning in force",
        )
        server.cap = FEEDS / "cma-blizzard-orange-update.cap"
        upgraded = wait_for(lambda: level_is("orange"), timeout=30, what="upgrade to orange")
        assert upgraded["id"] == opened["id"]
        assert [w["level"] for w in _warnings(stack)] == ["orange"]

        server.cap = FEEDS / "cma-blizzard-cancel.cap"
        wait_for(lambda: _warnings(stack) == [], what="warning cancelled")
        # The forecast still has the snow: the response stays until it clears too.
        assert stack.incident(opened["id"])["status"] != "resolved"

        server.forecast = FEEDS / "open-meteo-snow-stopped.json"
        resolved = wait_for(
            lambda: (d := stack.incident(opened["id"]))["status"] == "resolved" and d,
            timeout=30,
            what="resolved when the snow stops",
        )
        assert len(yuanhui_snow()) == 1, "one incident for Yuanhui from start to end"
        reasons = [h["reason"] for h in resolved["history"]]
        assert any("level yellow → orange" in r for r in reasons)
        assert "back to 0 in yuanhui" in reasons[-1]
        assert {a["state"] for a in resolved["assignments"]} <= {"cancelled", "done"}
        # Yancheng was only under the warnings: its incident ended with the cancel.
        [yancheng] = [i for i in stack.incidents() if i["district"] == "yancheng"]
        assert yancheng["status"] == "resolved" and yancheng["level"] == "orange"
    finally:
        assert stack.stop() == 0
        server.close()


def _feed_state(stack: Stack, name: str) -> str | None:
    from pingan.store import component_state

    return component_state(stack.store, f"feed:{name}")


def _warnings(stack: Stack) -> list[dict]:
    return stack.http.get("/api/warnings", headers=stack.auth).json()["warnings"]

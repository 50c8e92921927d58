"""A storm through the real processes: reports POSTed to Open311 (a trusted key, as
the city's 12345 platform sends them) at many distinct places, on `pingan run` (its
own broker, SQLite) or on the database and broker that PINGAN_DATABASE_URL and
PINGAN_KAFKA_URL name. Measured as a dispatcher meets it: when a report shows on an
incident, when its crew's message is written, and whether the stream ever stands
still. The Faust floor (a do-nothing agent on the same kind of broker) runs in the same
bench, so the ratio is taken side by side."""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import String, cast, func, literal, select

from pingan.intake.location import district_at
from pingan.runtime.broker import resolve_broker_bin, start_embedded_broker
from pingan.store import Store, as_utc
from pingan.store.schema import assignments, local_messages, reports
from tests.conftest import fresh_postgres_database
from tests.e2e.harness import Stack

TRUSTED_KEY = "bench-12345-platform"
BURST = 2_000
RATES = (50, 100, 200)
SUSTAIN_S = 60.0
DRAIN_LIMIT_S = 300.0
FLOOR_EVENTS = 20_000
CHART = Path("var/bench/storm-latency.png")


def city_points(count: int, seed: int) -> list[tuple[float, float]]:
    """Random points over the city core, each inside the city's real outlines (a point
    outside them is refused, 400); the storm tests use them too."""
    rng = random.Random(seed)
    places: list[tuple[float, float]] = []
    while len(places) < count:
        lat, lon = 33.50 + rng.random() * 0.16, 113.95 + rng.random() * 0.14
        if district_at(lat, lon) is not None:
            places.append((lat, lon))
    return places


def _env(database_url: str | None = None) -> dict[str, str]:
    env = {"PINGAN_OPEN311_TRUSTED_KEYS": TRUSTED_KEY, "PINGAN_LOG_LEVEL": "WARNING"}
    if os.environ.get("PINGAN_KAFKA_URL"):
        env["PINGAN_KAFKA_URL"] = os.environ["PINGAN_KAFKA_URL"]
    if database_url:
        env["PINGAN_DATABASE_URL"] = database_url
    return env


@contextmanager
def _running(scratch: str) -> Iterator[Stack]:
    """`pingan run` on a database of its own: SQLite in `scratch`, or a fresh database
    on the PostgreSQL server PINGAN_DATABASE_URL names (dropped afterwards), so one
    run's incidents never take another run's reports."""
    server = os.environ.get("PINGAN_DATABASE_URL")
    if not server:
        stack = Stack(Path(scratch) / "data", _env())
        try:
            yield stack
        finally:
            stack.stop()
        return
    with fresh_postgres_database(server, prefix="pingan_bench") as url:
        stack = Stack(Path(scratch) / "data", _env(url))
        stack.database_url = url  # type: ignore[attr-defined]
        try:
            yield stack
        finally:
            stack.stop()


def _store(stack: Stack) -> Store:
    url = getattr(stack, "database_url", None)
    return Store(url) if url else stack.store


def _tree_rss_kb(pid: int) -> int:
    """Resident memory of a process and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        todo += children.get(current, [])
        try:
            for line in (Path("/proc") / str(current) / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


@dataclass
class Observer:
    """Polls the database like a dispatcher's screen: when each report first shows
    linked to an incident, the longest stretch without progress, peak memory."""

    stack: Stack
    store: Store
    linked_at: dict[int, datetime] = field(default_factory=dict)
    longest_gap_s: float = 0.0
    peak_rss_kb: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        last_progress = time.monotonic()
        last_rss = 0.0
        below = 0  # every report up to here is linked (they link nearly in order)
        while not self._stop.wait(0.025):
            with self.store.read() as conn:
                newly = conn.execute(
                    select(reports.c.id).where(
                        reports.c.incident_id.is_not(None), reports.c.id > below
                    )
                ).scalars()
                seen = datetime.now(UTC)
                fresh = [r for r in newly if r not in self.linked_at]
                waiting = conn.execute(
                    select(func.count()).select_from(reports).where(reports.c.incident_id.is_(None))
                ).scalar_one()
            for report_id in fresh:
                self.linked_at[report_id] = seen
            while below + 1 in self.linked_at:
                below += 1
            now = time.monotonic()
            if fresh or not waiting:
                last_progress = now
            self.longest_gap_s = max(self.longest_gap_s, now - last_progress)
            if now - last_rss >= 0.5:
                last_rss = now
                self.peak_rss_kb = max(self.peak_rss_kb, _tree_rss_kb(self.stack.proc.pid))

    def stop(self) -> None:
        self._stop.set()


@contextmanager
def observing(stack: Stack) -> Iterator[Observer]:
    observer = Observer(stack, _store(stack))
    thread = threading.Thread(target=observer.run, daemon=True)
    thread.start()
    try:
        yield observer
    finally:
        observer.stop()
        thread.join()


async def _post(client: aiohttp.ClientSession, n: int, lat: float, lon: float) -> int:
    async with client.post(
        "/open311/v2/requests.json",
        data={
            "api_key": TRUSTED_KEY,
            "service_code": "fallen_tree",
            "lat": f"{lat:.5f}",
            "long": f"{lon:.5f}",
            "description": f"树倒了，压住路面 {n}",
        },
    ) as reply:
        reply.raise_for_status()
        return int((await reply.json())[0]["service_request_id"])


async def _burst(base_url: str, places: list[tuple[float, float]]) -> list[int]:
    """As fast as 32 concurrent clients can send."""
    return await _paced(base_url, places, rate=float("inf"))


async def _paced(base_url: str, places: list[tuple[float, float]], rate: float) -> list[int]:
    """Open loop: report n is sent at n / rate seconds, whatever the replies do, by a
    fixed set of senders (one pool queue of thousands would cost the client more than
    the server: httpcore assigns queued requests in quadratic time). The client is
    aiohttp's: httpx could not send more than ~200 requests/s to a do-nothing server on
    this machine (aiohttp: ~4,000), so it, not Ping'an, set the pace."""
    senders = 64
    ids: list[int] = [0] * len(places)
    todo = iter(enumerate(places))
    timeout = aiohttp.ClientTimeout(total=60)
    connector = aiohttp.TCPConnector(limit=senders)
    async with aiohttp.ClientSession(base_url, connector=connector, timeout=timeout) as client:
        start = time.monotonic()

        async def sender() -> None:
            for n, (lat, lon) in todo:
                await asyncio.sleep(max(0.0, start + n / rate - time.monotonic()))
                ids[n] = await _post(client, n, lat, lon)

        await asyncio.gather(*(sender() for _ in range(senders)))
    return ids


def _wait_linked(observer: Observer, ids: list[int], limit_s: float) -> bool:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if all(i in observer.linked_at for i in ids):
            return True
        time.sleep(0.1)
    return False


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


def _latencies(store: Store, observer: Observer, ids: list[int]) -> dict[str, list[float]]:
    """Accept -> linked for every report; accept -> crew message for the report that
    opened each incident (a later report joins an incident whose crew is already told)."""
    with store.read() as conn:
        rows = conn.execute(
            select(reports.c.id, reports.c.received_at, reports.c.incident_id).where(
                reports.c.id.in_(ids)
            )
        ).all()
        messages = dict(
            conn.execute(
                select(assignments.c.incident_id, func.min(local_messages.c.created_at))
                .join(
                    local_messages,
                    local_messages.c.idempotency_key
                    == literal("assignment:").concat(cast(assignments.c.id, String)),
                )
                .group_by(assignments.c.incident_id)
            ).all()
        )
    linked = [
        (observer.linked_at[r.id] - as_utc(r.received_at)).total_seconds()  # type: ignore[operator]
        for r in rows
        if r.id in observer.linked_at
    ]
    first_of: dict[int, Any] = {}
    for r in sorted(rows, key=lambda r: r.id):
        first_of.setdefault(r.incident_id, r)
    crew = [
        (as_utc(messages[inc]) - as_utc(r.received_at)).total_seconds()  # type: ignore[operator]
        for inc, r in first_of.items()
        if inc in messages
    ]
    return {"linked": linked, "crew": crew}


def faust_floor() -> float:
    with tempfile.TemporaryDirectory() as scratch:
        broker = start_embedded_broker(resolve_broker_bin(""), Path(scratch) / "broker.log")
        try:
            done = subprocess.run(
                [sys.executable, "-m", "bench.faust_floor", broker.bootstrap, str(FLOOR_EVENTS)],
                capture_output=True,
                text=True,
                timeout=600,
            )
        finally:
            broker.stop()
    line = done.stdout.strip().splitlines()[-1]
    return float(json.loads(line)["events_per_s"])


def burst() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as scratch, _running(scratch) as stack:
        with observing(stack) as observer:
            start = time.monotonic()
            ids = asyncio.run(_burst(stack.base_url, city_points(BURST, 1)))
            posted = time.monotonic() - start
            complete = _wait_linked(observer, ids, DRAIN_LIMIT_S)
            elapsed = time.monotonic() - start
        restarts = stack.output().count("worker exited")
    return {
        "reports_per_s": round(BURST / elapsed, 1) if complete else 0.0,
        "all_processed": complete,
        "seconds": round(elapsed, 1),
        "post_seconds": round(posted, 1),
        "longest_gap_s": round(observer.longest_gap_s, 2),
        "worker_restarts": restarts,
        "peak_rss_mb": round(observer.peak_rss_kb / 1024, 1),
    }


def sustained(rate: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as scratch, _running(scratch) as stack:
        with observing(stack) as observer:
            places = city_points(int(rate * SUSTAIN_S), 1000 + rate)
            sending = time.monotonic()
            ids = asyncio.run(_paced(stack.base_url, places, rate))
            sending = time.monotonic() - sending
            backlog_at_end = sum(1 for i in ids if i not in observer.linked_at)
            drained = _wait_linked(observer, ids, DRAIN_LIMIT_S)
            lat = _latencies(_store(stack), observer, ids)
        restarts = stack.output().count("worker exited")
    achieved = len(ids) / sending
    return {
        "rate": rate,
        # Intake answers slower than the schedule: the load really offered was less.
        "offered_per_s_achieved": round(achieved, 1),
        "accept_to_incident_s": [_pct(lat["linked"], q) for q in (0.5, 0.95, 0.99)],
        "accept_to_crew_message_s": [_pct(lat["crew"], q) for q in (0.5, 0.95, 0.99)],
        "backlog_when_sending_stopped": backlog_at_end,
        "sustained": drained and backlog_at_end <= rate * 2 and achieved >= rate * 0.95,
        "longest_gap_s": round(observer.longest_gap_s, 2),
        "peak_rss_mb": round(observer.peak_rss_kb / 1024, 1),
        "worker_restarts": restarts,
        "crew_messages_measured": len(lat["crew"]),
    }


def _chart(runs: list[dict[str, Any]]) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    CHART.parent.mkdir(parents=True, exist_ok=True)
    rates = [r["rate"] for r in runs]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for key, label in (
        ("accept_to_incident_s", "accept → incident"),
        ("accept_to_crew_message_s", "accept → crew message"),
    ):
        for q, style in ((0, "-o"), (2, "--o")):
            ys = [r[key][q] if r[key][q] is not None else float("nan") for r in runs]
            ax.plot(rates, ys, style, label=f"{label} p{(50, 95, 99)[q]}")
    ax.set_xlabel("offered load (reports/s, 60 s)")
    ax.set_ylabel("latency (s)")
    ax.set_yscale("log")
    ax.set_title("Ping'an storm: latency against offered load")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(CHART, dpi=110)
    plt.close(fig)
    return str(CHART)


def storm() -> list[dict[str, Any]]:
    where = "external" if os.environ.get("PINGAN_KAFKA_URL") else "embedded"
    database = "postgresql" if os.environ.get("PINGAN_DATABASE_URL") else "sqlite"
    common = {"broker": where, "database": database}
    floor = faust_floor()
    lines: list[dict[str, Any]] = [
        {"bench": "faust_floor_events_per_s", "value": round(floor), "unit": "events/s", **common}
    ]
    b = burst()
    lines.append(
        {
            "bench": "pipeline_reports_per_s",
            "value": b["reports_per_s"],
            "unit": "reports/s",
            "burst": BURST,
            **b,
            **common,
        }
    )
    lines.append(
        {
            "bench": "pipeline_vs_floor",
            "value": round(b["reports_per_s"] / floor, 5),
            "unit": "ratio",
            **common,
        }
    )
    runs = [sustained(rate) for rate in RATES]
    for run in runs:
        rate = run["rate"]
        for key in ("accept_to_incident_s", "accept_to_crew_message_s"):
            p50, p95, p99 = run[key]
            lines.append(
                {
                    "bench": f"{key.removesuffix('_s')}_p99_at_{rate}_per_s",
                    "value": p99,
                    "unit": "s",
                    "p50": p50,
                    "p95": p95,
                    **common,
                }
            )
        lines.append(
            {
                "bench": f"storm_{rate}_per_s_for_60_s",
                "value": int(run["sustained"]),
                "unit": "sustained (1/0)",
                **run,
                **common,
            }
        )
    chart = _chart(runs)
    if chart:
        lines.append({"bench": "storm_latency_chart", "value": chart, "unit": "png", **common})
    return lines


if __name__ == "__main__":
    for line in storm():
        print(json.dumps(line, ensure_ascii=False), flush=True)

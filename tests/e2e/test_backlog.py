"""Liveness under a storm, on the real embedded stack: while reports wait, the worker
keeps taking them. It used to stop for good ~30 s into any backlog (Faust paused
polling, aiokafka left the group and never rejoined), and after a restart or a broker
pause with a backlog waiting."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from bench.storm import city_points
from pingan.clock import utcnow
from pingan.intake.accept import accept_reports
from pingan.intake.reports import ReportDraft
from pingan.store.schema import audit, reports
from tests.e2e.harness import OPEN311_KEY, Stack, processes_matching, wait_for

pytestmark = pytest.mark.e2e
GAP_LIMIT_S = 20.0  # far below the watchdog's 60 s, far above any healthy pause


def _linked(stack: Stack) -> int:
    with stack.store.read() as conn:
        return conn.execute(
            select(func.count()).select_from(reports).where(reports.c.incident_id.is_not(None))
        ).scalar_one()


# A storm's fallen trees, each reported again and again by different citizens.
TREES = city_points(150, 2026)


def post_reports(stack: Stack, count: int, seed: int) -> None:
    """`count` fallen-tree reports of the storm's trees, over HTTP."""
    rng = random.Random(seed)
    places = [rng.choice(TREES) for _ in range(count)]

    async def send() -> None:
        limit = asyncio.Semaphore(16)
        async with httpx.AsyncClient(base_url=stack.base_url, timeout=30) as client:

            async def one(i: int, lat: float, lon: float) -> None:
                async with limit:
                    reply = await client.post(
                        "/open311/v2/requests.json",
                        data={
                            "api_key": OPEN311_KEY,
                            "service_code": "fallen_tree",
                            "lat": f"{lat:.5f}",
                            "long": f"{lon:.5f}",
                            "description": f"第{seed}-{i}棵树倒了",
                        },
                    )
                    assert reply.status_code == 200, reply.text

            await asyncio.gather(*(one(i, lat, lon) for i, (lat, lon) in enumerate(places)))

    asyncio.run(send())


def _waiting(stack: Stack) -> int:
    with stack.store.read() as conn:
        return conn.execute(
            select(func.count()).select_from(reports).where(reports.c.incident_id.is_(None))
        ).scalar_one()


@dataclass
class Watch:
    """Samples how many reports are linked to incidents, and how many wait, twice a
    second."""

    stack: Stack
    samples: list[tuple[float, int, int]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self._stop.wait(0.5):
            self.samples.append((time.monotonic(), _linked(self.stack), _waiting(self.stack)))

    def longest_gap(self, since: float, until: float | None = None) -> float:
        """The longest time in [since, until] that reports waited and none was linked."""
        until = until or time.monotonic()
        window = [s for s in self.samples if since <= s[0] <= until]
        assert window, "no samples in the window"
        longest, last_t, last_n = 0.0, window[0][0], window[0][1]
        for t, n, waiting in window[1:]:
            if n != last_n or not waiting:
                last_t, last_n = t, n
            longest = max(longest, t - last_t)
        return longest

    def progress(self, since: float) -> int:
        counts = [n for t, n, _ in self.samples if t >= since]
        return counts[-1] - counts[0] if counts else 0


@contextmanager
def watching(stack: Stack) -> Iterator[Watch]:
    watch = Watch(stack)
    thread = threading.Thread(target=watch.run, daemon=True)
    thread.start()
    try:
        yield watch
    finally:
        watch._stop.set()
        thread.join()


def _stalls(stack: Stack) -> int:
    with stack.store.read() as conn:
        return conn.execute(
            select(func.count()).select_from(audit).where(audit.c.action == "worker.stalled")
        ).scalar_one()


def _storm_env() -> dict[str, str]:
    return {"PINGAN_OPEN311_RATE_PER_MIN": "1000000"}


def inject_reports(stack: Stack, count: int, seed: int) -> None:
    """`count` reports at new places, accepted the way intake accepts them but without
    HTTP in between and 500 to a transaction: the batching worker outpaces HTTP clients
    and one-at-a-time accepts, and the test needs a backlog that lasts."""
    places = city_points(count, seed)
    store = stack.store
    try:
        for start in range(0, count, 500):
            drafts = []
            for n in range(start, min(count, start + 500)):
                lat, lon = places[n]
                text = f"第{seed}-{n}棵树倒了"
                drafts.append(ReportDraft("fallen_tree", lat, lon, None, text, None, {}))
            accept_reports(store, drafts, "open311", "test", utcnow())
    finally:
        store.dispose()


@pytest.mark.timeout(900)
def test_progress_never_stops_while_a_backlog_is_held_for_two_minutes(tmp_path: Path) -> None:
    stack = Stack(tmp_path / "data", _storm_env())
    try:
        accepted = 5_000
        with watching(stack) as watch:
            inject_reports(stack, accepted, seed=0)
            wait_for(lambda: _linked(stack) > 0, timeout=60, what="a first linked report")
            start = time.monotonic()
            lowest = accepted
            while time.monotonic() - start < 120:
                waiting = _waiting(stack)
                lowest = min(lowest, waiting)
                if waiting < 2_000:  # keep it waiting: top up
                    inject_reports(stack, 3_000, seed=accepted)
                    accepted += 3_000
                time.sleep(1)
            held_until = time.monotonic()
            gap = watch.longest_gap(start, held_until)
            print(
                f"held a backlog for 120 s: accepted={accepted} linked={_linked(stack)} "
                f"lowest_backlog={lowest} longest_gap_s={gap:.1f}"
            )
            assert lowest > 0, "the backlog drained; the test held nothing"
            assert gap < GAP_LIMIT_S, f"progress stopped for {gap:.1f}s under a backlog"
            # And it all gets done: nothing lost.
            wait_for(lambda: _linked(stack) == accepted, timeout=300, what="every report linked")
        assert _stalls(stack) == 0  # kept going by itself, not by being restarted
        assert "worker exited" not in stack.output()
    finally:
        assert stack.stop() == 0


@pytest.mark.timeout(900)
def test_progress_resumes_after_a_paused_broker_and_a_killed_worker(tmp_path: Path) -> None:
    stack = Stack(tmp_path / "data", _storm_env())
    [broker] = processes_matching(f"tcp://{stack.broker_bootstrap}")
    try:
        with watching(stack) as watch:
            # The broker stops answering; intake goes on taking reports into the outbox.
            os.kill(broker, signal.SIGSTOP)
            paused = time.monotonic()
            post_reports(stack, 10_000, seed=1)
            time.sleep(max(0.0, 60 - (time.monotonic() - paused)))
            assert _linked(stack) < 100, "the broker pause held nothing back"
            os.kill(broker, signal.SIGCONT)
            unpaused = time.monotonic()
            wait_for(
                lambda: watch.progress(unpaused) > 0,
                timeout=120,
                what="progress after the broker resumed",
            )
            resumed = time.monotonic()
            time.sleep(5)
            waiting_at_kill = 10_000 - _linked(stack)
            [worker] = processes_matching("-m pingan worker", parent=stack.proc.pid)
            os.kill(worker, signal.SIGKILL)
            killed = time.monotonic()
            wait_for(
                lambda: watch.progress(killed + 1) > 0,
                timeout=90,
                what="progress after the worker was killed",
            )
            restarted = time.monotonic()
            wait_for(lambda: _linked(stack) == 10_000, timeout=300, what="every report linked")
            drained = time.monotonic()
            after_pause = watch.longest_gap(resumed, killed)
            after_kill = watch.longest_gap(restarted, drained)
            print(
                f"10,000 held by a 60 s broker pause; after it: longest_gap_s={after_pause:.1f}; "
                f"killed the worker with {waiting_at_kill} waiting: back in "
                f"{restarted - killed:.0f}s, then longest_gap_s={after_kill:.1f}; "
                f"drained {drained - unpaused:.0f}s after the broker resumed"
            )
            assert waiting_at_kill > 1_000, "the backlog drained before the kill"
            assert after_pause < GAP_LIMIT_S, f"stalled {after_pause:.1f}s after the pause"
            assert after_kill < GAP_LIMIT_S, f"stalled {after_kill:.1f}s after the restart"
        assert _stalls(stack) == 0
    finally:
        for pid in processes_matching(f"tcp://{stack.broker_bootstrap}"):
            os.kill(pid, signal.SIGCONT)
        assert stack.stop() == 0

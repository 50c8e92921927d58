"""The watchdog thread of a real worker process's kind: a handler that never returns
makes it record why and end the process with 75; a worker that keeps finishing events
writes heartbeats and is left alone."""

from __future__ import annotations

import threading
import time

from sqlalchemy import select

from pingan.store import Store, component_row
from pingan.store.schema import audit
from streams.watchdog import STALLED_EXIT_CODE, Watchdog


def _sampling(watchdog: Watchdog, stop: threading.Event, flow: bool = True) -> threading.Thread:
    """Stands in for the event loop's once-a-second sample, faster."""

    def run() -> None:
        while not stop.wait(0.05):
            watchdog.take_sample(flow)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_a_stuck_handler_ends_the_worker_with_a_reason(store: Store) -> None:
    exits: list[int] = []
    watchdog = Watchdog(store, limit_s=1.0, exit_process=exits.append)
    stop = threading.Event()
    _sampling(watchdog, stop)
    watchdog.start()
    with watchdog.handling("dispatch"):
        deadline = time.monotonic() + 10
        while not exits and time.monotonic() < deadline:
            time.sleep(0.05)
    stop.set()
    assert exits == [STALLED_EXIT_CODE]
    row = component_row(store, "worker")
    assert row is not None and row.state == "stalled"
    assert row.detail.startswith("handler-stuck: consumer dispatch has not finished")
    with store.read() as conn:
        detail = conn.execute(
            select(audit.c.detail).where(audit.c.action == "worker.stalled")
        ).scalar_one()
    assert detail["reason"] == "handler-stuck" and detail["stuck_for_s"] >= 1.0


def test_a_worker_that_keeps_going_beats_and_lives(store: Store) -> None:
    exits: list[int] = []
    watchdog = Watchdog(store, limit_s=1.0, exit_process=exits.append)
    watchdog.ready = True
    stop = threading.Event()
    _sampling(watchdog, stop)
    watchdog.start()
    until = time.monotonic() + 2.5
    while time.monotonic() < until:  # busy, but every event finishes quickly
        with watchdog.handling("incidents"):
            time.sleep(0.01)
    stop.set()
    watchdog.stop()
    assert exits == []
    row = component_row(store, "worker")
    assert row is not None and row.state == "ready" and row.detail.startswith("handled=")

"""The worker's watchdog: a thread that judges the samples the event loop takes
(streams/liveness.py holds the rule) and ends a worker that stopped consuming,
so its supervisor (`pingan run`, or the container runtime) starts a fresh one that
rejoins the group. A thread, because a blocked event loop cannot judge itself.

While the worker is healthy the thread also writes a heartbeat (the `worker`
component row), which the supervisor and the console's health view read."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator

from pingan.clock import utcnow
from pingan.store import HEARTBEAT_S, SYSTEM, Store, mark_component, record_audit
from streams.liveness import Sample, Stall, judge, start_watch

log = logging.getLogger("pingan.watchdog")

STALLED_EXIT_CODE = 75  # EX_TEMPFAIL: try again, which is what the supervisor does


class Watchdog:
    def __init__(
        self,
        store: Store,
        limit_s: float,
        exit_process: Callable[[int], None] = os._exit,
    ) -> None:
        self.store = store
        self.limit_s = limit_s
        self.handled = 0
        self.ready = False
        self._exit = exit_process
        self._busy: dict[str, float] = {}
        self._sample: Sample | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pingan-watchdog", daemon=True)

    @contextlib.contextmanager
    def handling(self, consumer: str) -> Iterator[None]:
        """Around one handler call: it counts as busy until it returns."""
        self._busy[consumer] = time.monotonic()
        try:
            yield
        finally:
            self._busy.pop(consumer, None)
            self.handled += 1

    def take_sample(self, flow_active: bool) -> None:
        """Called on the event loop, about once a second."""
        busy = min(self._busy.items(), key=lambda item: item[1], default=None)
        self._sample = Sample(
            taken_at=time.monotonic(),
            handled=self.handled,
            flow_active=flow_active,
            busy_since=busy[1] if busy else None,
            busy_with=busy[0] if busy else "",
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        watch = start_watch(time.monotonic())
        last_beat = 0.0
        while not self._stop.wait(1.0):
            now = time.monotonic()
            watch, stall = judge(watch, self._sample, now, self.limit_s)
            if stall is not None:
                self._give_up(stall)
                return
            if self.ready and now - last_beat >= HEARTBEAT_S:
                last_beat = now
                try:
                    mark_component(self.store, "worker", "ready", f"handled={self.handled}")
                except Exception as exc:  # the database is away; the next beat tries again
                    log.warning("worker heartbeat not written: %s", exc)

    def _give_up(self, stall: Stall) -> None:
        log.error(
            "worker stalled reason=%s stuck_for_s=%.0f handled=%d detail=%r; "
            "exiting with code %d so that it is restarted",
            stall.reason,
            stall.stuck_for_s,
            self.handled,
            stall.detail,
            STALLED_EXIT_CODE,
        )
        # Recording why must not keep a stuck worker alive: a few seconds, then go.
        recorder = threading.Thread(target=self._record, args=(stall,), daemon=True)
        recorder.start()
        recorder.join(timeout=5)
        self._exit(STALLED_EXIT_CODE)

    def _record(self, stall: Stall) -> None:
        try:
            mark_component(self.store, "worker", "stalled", stall.describe())
            with self.store.transaction() as conn:
                record_audit(
                    conn,
                    utcnow(),
                    SYSTEM,
                    "worker.stalled",
                    "worker",
                    str(os.getpid()),
                    {"reason": stall.reason, "stuck_for_s": round(stall.stuck_for_s, 1)},
                )
        except Exception as exc:
            log.error("could not record the stall: %s", exc)

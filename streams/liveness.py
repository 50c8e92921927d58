"""Is the stream worker still alive in the sense that matters: does it keep consuming?

A pure judgement over samples, so the rule is table-tested without a broker;
streams/watchdog.py takes the samples and acts on a verdict.

Why these three signs. Faust stops polling Kafka on purpose while its buffers are
full (backpressure), aiokafka counts that as an idle consumer and leaves the group,
and then refuses to rejoin until polling resumes, while Faust waits for the new
assignment before it polls again: the worker lives on and never consumes another
event. That deadlock shows as consumer flow suspended (a rebalance that never ends).
A handler that never returns shows as one handler busy for too long, and synchronous
work that never ends shows as an event loop that stopped taking samples."""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Sample:
    """What the worker's event loop saw at `taken_at` (monotonic seconds)."""

    taken_at: float
    handled: int  # events finished by this process, whatever their outcome
    flow_active: bool  # False while Faust waits for a partition assignment
    busy_since: float | None  # start of the oldest handler still running, if any
    busy_with: str = ""  # which consumer that handler belongs to


@dataclass(frozen=True)
class Watch:
    """What the judge remembers between samples."""

    handled: int = 0
    progress_at: float = 0.0  # last time `handled` moved (or the watch began)
    flow_stopped_at: float | None = None  # when flow was first seen suspended


@dataclass(frozen=True)
class Stall:
    reason: str  # loop-blocked | rebalance-stuck | handler-stuck
    stuck_for_s: float
    detail: str

    def describe(self) -> str:
        return f"{self.reason}: {self.detail} for {self.stuck_for_s:.0f}s"


def start_watch(now: float) -> Watch:
    return Watch(progress_at=now)


def judge(
    watch: Watch, sample: Sample | None, now: float, limit_s: float
) -> tuple[Watch, Stall | None]:
    """The next watch state, and a stall when the worker has stopped consuming for
    longer than `limit_s`. `sample` is the newest one the event loop took (None
    before its first)."""
    if sample is None:
        return watch, None
    if sample.handled != watch.handled:
        watch = replace(watch, handled=sample.handled, progress_at=sample.taken_at)
    if sample.flow_active:
        watch = replace(watch, flow_stopped_at=None)
    elif watch.flow_stopped_at is None:
        watch = replace(watch, flow_stopped_at=sample.taken_at)

    blocked_for = now - sample.taken_at
    if blocked_for > limit_s:
        return watch, Stall("loop-blocked", blocked_for, "the event loop took no sample")
    if watch.flow_stopped_at is not None and now - watch.flow_stopped_at > limit_s:
        return watch, Stall(
            "rebalance-stuck",
            now - watch.flow_stopped_at,
            "consumer flow suspended, waiting for a partition assignment",
        )
    if sample.busy_since is not None and now - sample.busy_since > limit_s:
        return watch, Stall(
            "handler-stuck",
            now - sample.busy_since,
            f"consumer {sample.busy_with or '?'} has not finished its event",
        )
    return watch, None

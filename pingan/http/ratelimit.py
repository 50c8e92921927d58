"""Token buckets per api_key and per caller: a flood of requests gets a clear 429 with
Retry-After instead of burying the dispatchers. In memory, per HTTP process."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass


class RateLimited(Exception):
    def __init__(self, scope: str, retry_after_s: int) -> None:
        who = "this api_key" if scope == "key" else "this phone number"
        super().__init__(f"too many requests from {who}; try again in {retry_after_s} s")
        self.retry_after_s = retry_after_s


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimits:
    MAX_KEYS = 100_000  # forget the oldest buckets beyond this (a flood of new callers)

    def __init__(
        self, per_minute: dict[str, float], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.per_minute = per_minute  # scope -> allowed requests per minute (burst = 1 min)
        self.clock = clock
        self._buckets: dict[tuple[str, str], _Bucket] = {}

    def check(self, scope: str, key: str) -> None:
        rate = self.per_minute[scope]
        now = self.clock()
        bucket = self._buckets.get((scope, key))
        if bucket is None:
            if len(self._buckets) >= self.MAX_KEYS:
                self._buckets.pop(next(iter(self._buckets)))
            bucket = self._buckets[(scope, key)] = _Bucket(rate, now)
        bucket.tokens = min(rate, bucket.tokens + (now - bucket.at) * rate / 60)
        bucket.at = now
        if bucket.tokens < 1:
            raise RateLimited(scope, max(1, math.ceil((1 - bucket.tokens) * 60 / rate)))
        bucket.tokens -= 1


class AuditBudget:
    """Anonymous failures (a bad crew link, a forged webhook) are audited, but a flood
    of them must not fill the audit table: at most `per_minute` rows per kind; the
    rest are counted, and the next row written says how many were not."""

    def __init__(self, per_minute: int = 30, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute, self.clock = per_minute, clock
        self._window: dict[str, tuple[float, int, int]] = {}  # kind -> (start, rows, skipped)

    def take(self, kind: str) -> int | None:
        """None: do not write a row (counted). Else the number skipped since the last
        row, to record in this one."""
        now = self.clock()
        start, rows, skipped = self._window.get(kind, (now, 0, 0))
        if now - start >= 60:
            start, rows = now, 0
        if rows >= self.per_minute:
            self._window[kind] = (start, rows, skipped + 1)
            return None
        self._window[kind] = (start, rows + 1, 0)
        return skipped

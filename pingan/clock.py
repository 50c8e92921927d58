"""Time, in one place, so the core can be handed `now` and tests can move it.

For tests and drills, PINGAN_CLOCK_OFFSET_FILE names a file holding a number of
seconds to add to the real time; every process of a deployment reads the same file,
so a test can jump past a deadline instead of sleeping through it."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

_cache: tuple[str, float, float] | None = None  # (path, mtime, offset)


def _offset_s() -> float:
    global _cache
    path = os.environ.get("PINGAN_CLOCK_OFFSET_FILE")
    if not path:
        return 0.0
    try:
        mtime = os.stat(path).st_mtime
    except OSError:
        return 0.0
    if _cache and _cache[0] == path and _cache[1] == mtime:
        return _cache[2]
    try:
        with open(path, encoding="utf-8") as f:
            offset = float(f.read().strip() or 0)
    except (OSError, ValueError):
        offset = 0.0
    _cache = (path, mtime, offset)
    return offset


def utcnow() -> datetime:
    return datetime.now(UTC) + timedelta(seconds=_offset_s())

"""`pingan replay FILE`: feed a recorded sequence of feed documents, warnings and
citizen reports into the system at a chosen speed, through the same intake as the
live pollers and the Open311 endpoint (persist, then publish via the outbox). Run it
beside `pingan run` on the same data folder.

    - {at_min: 0, open_meteo: forecast-0300.json, district: yuanhui}
    - {at_min: 150, cap: cma-blizzard-yellow.cap}
    - {at_min: 200, report: {service_code: snow_ice, lat: 33.5734, long: 114.0202}}
    - {at_min: 210, warning: {id: W1, event: 暴雪, level: 黄色, districts: [源汇区]}}

Paths are relative to the replay file. --speed N plays N simulated minutes per second.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import yaml

from pingan.clock import utcnow
from pingan.intake.accept import accept_report, accept_warning
from pingan.intake.feeds.cap import FeedRejected
from pingan.intake.feeds.ingest import ingest_cap, ingest_forecast
from pingan.intake.reports import ReportInvalid, validate_report
from pingan.intake.warnings import WarningInvalid, parse_signal
from pingan.store import Store
from playbooks.index import PlaybookIndex


class ReplayError(ValueError):
    pass


def load_replay(path: Path) -> list[dict[str, Any]]:
    try:
        steps = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ReplayError(f"{path}: {exc}") from None
    if not isinstance(steps, list):
        raise ReplayError(f"{path}: expected a list of steps")
    for n, step in enumerate(steps, start=1):
        if not isinstance(step, dict) or "at_min" not in step:
            raise ReplayError(f"{path}: step {n}: needs at_min")
        kinds = {"cap", "open_meteo", "report", "warning"} & set(step)
        if len(kinds) != 1:
            raise ReplayError(f"{path}: step {n}: exactly one of cap, open_meteo, report, warning")
    return sorted(steps, key=lambda s: float(s["at_min"]))


def play_step(step: dict[str, Any], base: Path, store: Store, index: PlaybookIndex) -> str:
    now = utcnow()
    try:
        if "cap" in step:
            result = ingest_cap(store, (base / step["cap"]).read_bytes(), "replay", now)
            return f"cap {step['cap']}: {result.accepted or result.ignored or 'already seen'}"
        if "open_meteo" in step:
            data = (base / step["open_meteo"]).read_bytes()
            result = ingest_forecast(store, index, data, str(step["district"]), now)
            return (
                f"forecast {step['open_meteo']} ({step['district']}): "
                f"{result.accepted or 'no threshold change'}"
            )
        if "warning" in step:
            signal = parse_signal(step["warning"], now)
            fresh = accept_warning(
                store, signal, str(step["warning"].get("headline", "")), "replay", now
            )
            return f"warning {signal.id} {signal.msg_type}: {'accepted' if fresh else 'seen'}"
        fields = {k: str(v) for k, v in step["report"].items()}
        draft = validate_report(fields, index.report_categories())
        return f"report #{accept_report(store, draft, 'replay', 'replay', now).report_id}"
    except (OSError, FeedRejected, WarningInvalid, ReportInvalid) as exc:
        return f"refused: {exc}"


async def replay(path: Path, store: Store, index: PlaybookIndex, speed: float) -> int:
    steps = load_replay(path)
    start = time.monotonic()
    for step in steps:
        due = float(step["at_min"]) / speed
        await asyncio.sleep(max(0.0, due - (time.monotonic() - start)))
        line = await asyncio.to_thread(play_step, step, path.parent, store, index)
        print(f"[+{float(step['at_min']):6.1f} min] {line}", flush=True)
    return 0

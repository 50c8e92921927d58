"""Correlation cost per report with 1,000 open incidents against 10: the candidate
lookup must go through indexes, not read every open incident. The two databases are
measured interleaved, on the real handler (load, decide, write, on SQLite)."""

from __future__ import annotations

import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from pingan.core import topics
from pingan.intake.accept import accept_report
from pingan.intake.reports import ReportDraft
from pingan.settings import PROJECT_ROOT
from pingan.store import Store
from pingan.store.incidents import insert_incident
from pingan.store.schema import outbox
from playbooks.registry import PlaybookRegistry
from streams import handlers

NOW = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
ROUNDS = 5
PER_ROUND = 40


def _store(folder: Path, open_incidents: int, registry: PlaybookRegistry) -> Store:
    store = Store(f"sqlite:///{folder / f'open-{open_incidents}.db'}")
    store.create_schema()
    trees = registry.index.for_report("fallen_tree")
    assert trees is not None
    rng = random.Random(open_incidents)
    with store.transaction() as conn:
        for _ in range(open_incidents):
            insert_incident(
                conn,
                category="fallen_tree",
                level="routine",
                scope="site",
                district=None,
                playbook=trees,
                lat=33.50 + rng.random() * 0.16,
                lon=113.95 + rng.random() * 0.14,
                now=NOW,
            )
    return store


def _round(store: Store, registry: PlaybookRegistry, seed: int) -> float:
    """Seconds per report for PER_ROUND reports at new places (each a new incident)."""
    rng = random.Random(seed)
    ids = []
    for n in range(PER_ROUND):
        draft = ReportDraft(
            "fallen_tree",
            33.50 + rng.random() * 0.16,
            113.95 + rng.random() * 0.14,
            None,
            f"树倒了{seed}-{n}",
            None,
            {},
        )
        ids.append(accept_report(store, draft, "bench", "bench", NOW).report_id)
    with store.read() as conn:
        events = [
            r.payload
            for r in conn.execute(select(outbox.c.payload).where(outbox.c.topic == topics.REPORTS))
            if r.payload["report_id"] in ids
        ]
    start = time.perf_counter()
    for event in events:
        handlers.handle_report_accepted(store, registry.index, event, NOW + timedelta(seconds=1))
    return (time.perf_counter() - start) / len(events)


def correlation_cost_ratio() -> list[dict]:
    registry = PlaybookRegistry(PROJECT_ROOT / "playbooks")
    with tempfile.TemporaryDirectory() as scratch:
        few = _store(Path(scratch), 10, registry)
        many = _store(Path(scratch), 1000, registry)
        times: dict[int, list[float]] = {10: [], 1000: []}
        for r in range(ROUNDS):  # interleaved: drift hits both alike
            times[10].append(_round(few, registry, 100 + r))
            times[1000].append(_round(many, registry, 200 + r))
        few.dispose()
        many.dispose()
    best = {n: min(t) for n, t in times.items()}
    return [
        {
            "bench": "correlation_cost_ratio_1000_vs_10_open",
            "value": round(best[1000] / best[10], 3),
            "unit": "ratio",
            "ms_per_report_10_open": round(best[10] * 1000, 3),
            "ms_per_report_1000_open": round(best[1000] * 1000, 3),
            "reports_per_round": PER_ROUND,
            "rounds": ROUNDS,
        }
    ]

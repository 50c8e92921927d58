"""The figures the bureau reports: time to acknowledge, to arrive, to resolve, and the
share within deadline, per category, unit, crew or day. Pure: rows in, table out."""

from __future__ import annotations

import csv
import io
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

GROUPS = ("category", "unit", "crew", "day")


@dataclass(frozen=True)
class AssignmentFacts:
    category: str
    unit: str
    crew: str
    created_at: datetime
    ack_due_at: datetime | None
    acknowledged_at: datetime | None
    on_scene_at: datetime | None
    done_at: datetime | None
    incident_opened_at: datetime
    incident_resolved_at: datetime | None


def _minutes(a: datetime | None, b: datetime | None) -> float | None:
    return (b - a).total_seconds() / 60 if a and b else None


def _median(values: Sequence[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


def compute(rows: Iterable[AssignmentFacts], group: str) -> list[dict[str, object]]:
    if group not in GROUPS:
        raise ValueError(f"group: {group!r} is not one of {', '.join(GROUPS)}")
    buckets: dict[str, list[AssignmentFacts]] = {}
    for row in rows:
        key = row.created_at.date().isoformat() if group == "day" else getattr(row, group)
        buckets.setdefault(key, []).append(row)
    table = []
    for key in sorted(buckets):
        items = buckets[key]
        ack = [m for r in items if (m := _minutes(r.created_at, r.acknowledged_at)) is not None]
        arrive = [m for r in items if (m := _minutes(r.created_at, r.on_scene_at)) is not None]
        resolved = {(r.incident_opened_at, r.incident_resolved_at) for r in items}
        resolve = [m for a, b in resolved if (m := _minutes(a, b)) is not None]
        due = [r for r in items if r.ack_due_at is not None]
        on_time = [r for r in due if r.acknowledged_at and r.acknowledged_at <= r.ack_due_at]
        table.append(
            {
                group: key,
                "assignments": len(items),
                "acknowledged": len(ack),
                "median_min_to_ack": _median(ack),
                "median_min_to_arrive": _median(arrive),
                "median_min_to_resolve": _median(resolve),
                "pct_ack_within_deadline": round(100 * len(on_time) / len(due), 1) if due else None,
            }
        )
    return table


def to_csv(table: Sequence[dict[str, object]]) -> str:
    out = io.StringIO()
    if table:
        writer = csv.DictWriter(out, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(table)
    return out.getvalue()

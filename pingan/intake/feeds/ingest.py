"""From a fetched document to the system of record: CAP warnings become warning
messages (deduplicated by identifier and msgType), Open-Meteo forecasts become
threshold crossings per district. Both publish through the outbox like every input.
Used by the pollers and by `pingan replay`."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select

from pingan.core import topics
from pingan.intake.accept import accept_warning
from pingan.intake.feeds.cap import CapAlert, FeedRejected, parse_cap
from pingan.intake.feeds.normalize import NotActionable, cap_to_signal
from pingan.intake.feeds.open_meteo import parse_open_meteo
from pingan.intake.thresholds import CrossingState, step, watches, window_value
from pingan.intake.warnings import WarningInvalid, parse_signal, threshold_to_event
from pingan.store import Store, as_utc, emit
from pingan.store.schema import threshold_state
from playbooks.index import PlaybookIndex

log = logging.getLogger("pingan.feeds")


@dataclass
class IngestResult:
    accepted: list[str] = field(default_factory=list)  # warning ids or crossings
    duplicates: int = 0
    ignored: list[str] = field(default_factory=list)  # reasons


def ingest_alert(store: Store, alert: CapAlert, source: str, now: datetime) -> IngestResult:
    result = IngestResult()
    try:
        signal, headline = cap_to_signal(alert)
    except NotActionable as exc:
        result.ignored.append(f"{alert.identifier}: {exc}")
        return result
    if accept_warning(store, signal, headline, source, now):
        result.accepted.append(f"{signal.id} {signal.msg_type} {signal.event} {signal.level}")
        log.info(
            "warning accepted id=%s type=%s event=%s level=%s districts=%s source=%s",
            signal.id,
            signal.msg_type,
            signal.event,
            signal.level,
            ",".join(signal.districts),
            source,
        )
    else:
        result.duplicates += 1
    return result


def ingest_cap(store: Store, data: bytes, source: str, now: datetime) -> IngestResult:
    return ingest_alert(store, parse_cap(data), source, now)


def ingest_cma_json(store: Store, data: bytes, source: str, now: datetime) -> IngestResult:
    """A JSON list of signals in the documented CMA-style shape (pingan/intake/warnings.py)."""
    import json

    try:
        items = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FeedRejected(f"not valid JSON: {exc}") from None
    if not isinstance(items, list):
        raise FeedRejected("expected a JSON list of warning signals")
    result = IngestResult()
    for n, item in enumerate(items, start=1):
        try:
            signal = parse_signal(item, now)
        except WarningInvalid as exc:
            result.ignored.append(f"signal {n}: {exc}")
            continue
        headline = str(item.get("headline", ""))[:500] if isinstance(item, dict) else ""
        if accept_warning(store, signal, headline, source, now):
            result.accepted.append(f"{signal.id} {signal.msg_type}")
        else:
            result.duplicates += 1
    return result


def ingest_forecast(
    store: Store, index: PlaybookIndex, data: bytes, district: str, now: datetime
) -> IngestResult:
    """Evaluate every watched threshold for one district's forecast; announce crossings
    and clearings, and remember the state, in one transaction."""
    series = parse_open_meteo(data)
    result = IngestResult()
    with store.transaction() as conn:
        for watch in watches(index):
            key = (
                (threshold_state.c.district == district)
                & (threshold_state.c.metric == watch.metric)
                & (threshold_state.c.window_h == watch.window_h)
                & (threshold_state.c.op == watch.op)
            )
            row = conn.execute(select(threshold_state).where(key)).first()
            state = CrossingState(bool(row.active), row.band) if row else CrossingState()
            value = window_value(series.hours, watch.metric, watch.window_h)
            new_state, event = step(watch, state, value, district, now)
            if row is None:
                conn.execute(
                    threshold_state.insert().values(
                        district=district,
                        metric=watch.metric,
                        window_h=watch.window_h,
                        op=watch.op,
                        active=int(new_state.active),
                        band=new_state.band,
                        value=value,
                        updated_at=now,
                    )
                )
            else:
                conn.execute(
                    threshold_state.update()
                    .where(key)
                    .values(
                        active=int(new_state.active),
                        band=new_state.band,
                        value=value,
                        updated_at=now,
                    )
                )
            if event is not None:
                emit(
                    conn,
                    topics.WEATHER,
                    district,
                    {"type": "threshold.changed", "threshold": threshold_to_event(event)},
                    now,
                )
                verb = "cleared" if event.cleared else "reached"
                result.accepted.append(
                    f"{district} {watch.metric}/{watch.window_h}h {verb} at {event.value:g}"
                )
                log.info(
                    "threshold %s district=%s metric=%s window_h=%s value=%s",
                    verb,
                    district,
                    watch.metric,
                    watch.window_h,
                    event.value,
                )
    return result


def threshold_states(store: Store) -> list[dict]:
    with store.read() as conn:
        return [
            {
                "district": r.district,
                "metric": r.metric,
                "window_h": r.window_h,
                "op": r.op,
                "active": bool(r.active),
                "band": r.band,
                "value": r.value,
                "updated_at": as_utc(r.updated_at).isoformat(),
            }  # type: ignore[union-attr]
            for r in conn.execute(select(threshold_state))
        ]

"""Warning signals as the system records them, and the simple JSON shape for CMA-style
signals (documented in docs/warnings.md). Pure parsing: dict in, WarningSignal out,
or WarningInvalid naming the field.

    {"id": "LH-20260120-BS01", "msg_type": "Alert", "event": "暴雪", "level": "黄色",
     "districts": ["源汇区", "yancheng"], "expires": "2026-01-20T18:00:00+08:00",
     "references": [], "headline": "漯河市气象台发布暴雪黄色预警信号"}
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pingan.city import load_city
from pingan.core.events import ThresholdCrossed, WarningSignal
from pingan.vocabulary import METRICS, WARNING_EVENTS, WINDOWS_H, warning_level

EVENTS_ZH = {zh: en for en, zh in WARNING_EVENTS.items()}
MSG_TYPES = ("Alert", "Update", "Cancel")


class WarningInvalid(ValueError):
    pass


def _time(data: Mapping[str, Any], name: str) -> datetime | None:
    raw = data.get(name)
    if raw in (None, ""):
        return None
    try:
        value = datetime.fromisoformat(str(raw))
    except ValueError:
        raise WarningInvalid(f"{name}: {raw!r} is not an ISO 8601 time") from None
    if value.tzinfo is None:
        raise WarningInvalid(f"{name}: {raw!r} has no time zone (add +08:00 or Z)")
    return value.astimezone(UTC)


def _district_codes(raw: Any) -> tuple[str, ...]:
    city = load_city()
    by_name = {d.zh: code for code, d in city.districts.items()}
    if raw == "all":
        return tuple(city.districts)
    if not isinstance(raw, list) or not raw:
        raise WarningInvalid("districts: expected a non-empty list of district codes or names")
    codes = []
    for item in raw:
        code = item if item in city.districts else by_name.get(str(item))
        if code is None:
            raise WarningInvalid(
                f"districts: unknown district {item!r} (known: {', '.join(city.districts)})"
            )
        codes.append(code)
    return tuple(dict.fromkeys(codes))


def parse_signal(data: Any, now: datetime) -> WarningSignal:
    """The documented JSON shape to a WarningSignal."""
    if not isinstance(data, Mapping):
        raise WarningInvalid("expected a JSON object")
    warning_id = str(data.get("id", "")).strip()
    if not warning_id or len(warning_id) > 200:
        raise WarningInvalid("id: required, at most 200 characters")
    msg_type = data.get("msg_type", "Alert")
    if msg_type not in MSG_TYPES:
        raise WarningInvalid(f"msg_type: {msg_type!r} is not one of {', '.join(MSG_TYPES)}")
    event = EVENTS_ZH.get(str(data.get("event")), data.get("event"))
    if event not in WARNING_EVENTS:
        raise WarningInvalid(
            f"event: {data.get('event')!r} is not one of "
            + ", ".join(f"{en}/{zh}" for en, zh in WARNING_EVENTS.items())
        )
    level = warning_level(data.get("level"))
    if level is None:
        raise WarningInvalid(
            f"level: {data.get('level')!r} is not blue/yellow/orange/red (蓝色/黄色/橙色/红色)"
        )
    references = data.get("references", [])
    if not isinstance(references, list) or not all(isinstance(r, str) for r in references):
        raise WarningInvalid("references: expected a list of warning ids")
    if msg_type == "Update" and not references:
        raise WarningInvalid("references: an Update must name the warning it updates")
    return WarningSignal(
        id=warning_id,
        event=str(event),
        level=str(level),
        msg_type=msg_type,
        districts=_district_codes(data.get("districts")),
        at=_time(data, "sent") or now,
        expires=_time(data, "expires"),
        references=tuple(references),
    )


def signal_to_event(signal: WarningSignal, headline: str = "") -> dict[str, Any]:
    return {
        "id": signal.id,
        "event": signal.event,
        "level": signal.level,
        "msg_type": signal.msg_type,
        "districts": list(signal.districts),
        "sent": signal.at.isoformat(),
        "expires": signal.expires.isoformat() if signal.expires else None,
        "references": list(signal.references),
        "headline": headline,
    }


def signal_from_event(data: Any) -> WarningSignal:
    """Back from the topic payload (already validated when it was accepted)."""
    return parse_signal(data, datetime.now(UTC))


def threshold_to_event(crossed: ThresholdCrossed) -> dict[str, Any]:
    return {
        "metric": crossed.metric,
        "window_h": crossed.window_h,
        "value": crossed.value,
        "district": crossed.district,
        "at": crossed.at.isoformat(),
        "cleared": crossed.cleared,
    }


def threshold_from_event(data: Any) -> ThresholdCrossed:
    if not isinstance(data, Mapping):
        raise WarningInvalid("threshold: expected an object")
    try:
        crossed = ThresholdCrossed(
            metric=str(data["metric"]),
            window_h=int(data["window_h"]),
            value=float(data["value"]),
            district=str(data["district"]),
            at=datetime.fromisoformat(str(data["at"])),
            cleared=bool(data.get("cleared")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise WarningInvalid(f"threshold: {exc}") from None
    if crossed.metric not in METRICS or crossed.window_h not in WINDOWS_H:
        raise WarningInvalid(
            f"threshold: unknown metric/window {crossed.metric}/{crossed.window_h}"
        )
    return crossed

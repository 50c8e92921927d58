"""`pingan feeds parse FILE|URL`: what the system makes of one feed document, as JSON,
or the reason it refuses it (exit code 1). For operators debugging a feed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from pingan.intake.feeds.cap import MAX_BYTES, CapAlert, FeedRejected, parse_document
from pingan.intake.feeds.normalize import NotActionable, cap_to_signal, normalize_cap
from pingan.intake.feeds.open_meteo import looks_like_open_meteo, parse_open_meteo


def read_source(source: str, timeout_s: float = 15.0) -> bytes:
    if source.startswith(("http://", "https://")):
        with (
            httpx.Client(timeout=timeout_s, follow_redirects=True) as client,
            client.stream("GET", source) as reply,
        ):
            reply.raise_for_status()
            data = b""
            for chunk in reply.iter_bytes():
                data += chunk
                if len(data) > MAX_BYTES:
                    raise FeedRejected(f"document larger than {MAX_BYTES} bytes")
            return data
    return Path(source).read_bytes()


def _alert_summary(alert: CapAlert) -> dict[str, Any]:
    try:
        signal, _ = cap_to_signal(alert)
        acts = {
            "acts_on": {
                "event": signal.event,
                "msg_type": signal.msg_type,
                "level": signal.level,
                "districts": list(signal.districts),
            }
        }
    except NotActionable as exc:
        acts = {"acts_on": None, "not_acted_on_because": str(exc)}
    return {
        "type": "cap",
        "version": alert.version,
        "signed": alert.signed,
        "warnings": normalize_cap(alert),
        **acts,
    }


def describe(data: bytes) -> dict[str, Any]:
    """Raises FeedRejected with the reason."""
    if looks_like_open_meteo(data):
        series = parse_open_meteo(data)
        return {
            "type": "open-meteo",
            "latitude": series.latitude,
            "longitude": series.longitude,
            "hours": len(series.hours),
            "units": series.units_note,
            "observations": [h.as_json() for h in series.hours],
        }
    document = parse_document(data)
    if isinstance(document, CapAlert):
        return _alert_summary(document)
    return {
        "type": "index",
        "entries": [
            {
                "id": e.id,
                "title": e.title,
                "link": e.link,
                "updated": e.updated,
                **({"embedded": _alert_summary(e.alert)} if e.alert else {}),
            }
            for e in document.entries
        ],
        "skipped": list(document.skipped),
    }


def parse_command(source: str) -> tuple[int, str]:
    try:
        data = read_source(source)
        return 0, json.dumps(describe(data), ensure_ascii=False, indent=2)
    except FeedRejected as exc:
        return 1, f"rejected: {exc}"
    except (OSError, httpx.HTTPError) as exc:
        return 1, f"cannot read {source}: {exc}"

"""What happens (the events the core decides on), what the core knows about an open
incident, and what it decides (the decisions the shells write). Pure data."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from playbooks.model import Playbook

# ---- events ---------------------------------------------------------------------


@dataclass(frozen=True)
class WarningSignal:
    """An official warning (CAP or CMA) as the feeds normalise it."""

    id: str
    event: str  # blizzard, rainstorm, gale, road_icing, cold_wave
    level: str  # blue, yellow, orange, red
    msg_type: str  # Alert, Update, Cancel
    districts: tuple[str, ...]
    at: datetime
    expires: datetime | None = None
    references: tuple[str, ...] = ()


@dataclass(frozen=True)
class ThresholdCrossed:
    """A district's forecast/observation crossed (or, cleared=True, fell back below)
    a value over a window. The evaluator applies hysteresis before emitting."""

    metric: str
    window_h: int
    value: float
    district: str
    at: datetime
    cleared: bool = False


@dataclass(frozen=True)
class ReportReceived:
    report_id: int
    category: str
    lat: float | None
    lon: float | None
    at: datetime
    district: str | None = None


@dataclass(frozen=True)
class ClockTick:
    """Time passing: warnings expire."""

    at: datetime


Event = WarningSignal | ThresholdCrossed | ReportReceived | ClockTick

# ---- state ----------------------------------------------------------------------


@dataclass(frozen=True)
class IncidentView:
    """What the matcher needs to know about an open incident."""

    id: int
    playbook: Playbook  # the snapshot taken when the incident opened
    level: str
    scope: str  # "site" or "district"
    district: str | None = None
    lat: float | None = None
    lon: float | None = None
    report_count: int = 0
    last_report_at: datetime | None = None
    # warning id -> expiry (None: no expiry given)
    warnings: dict[str, datetime | None] = field(default_factory=dict)
    thresholds_active: bool = False


# ---- decisions ------------------------------------------------------------------


@dataclass(frozen=True)
class OpenIncident:
    playbook: Playbook
    level: str
    scope: str
    reason: str
    district: str | None = None
    lat: float | None = None
    lon: float | None = None


@dataclass(frozen=True)
class UpgradeIncident:
    incident_id: int
    from_level: str
    to_level: str
    reason: str


@dataclass(frozen=True)
class AttachToIncident:
    incident_id: int
    reason: str
    distance_m: float | None = None


@dataclass(frozen=True)
class EndWarnings:
    """These warnings no longer drive the incident (cancelled, expired, superseded)."""

    incident_id: int
    warning_ids: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class ResolveIncident:
    incident_id: int
    reason: str


@dataclass(frozen=True)
class Ignored:
    reason: str


Decision = (
    OpenIncident | UpgradeIncident | AttachToIncident | EndWarnings | ResolveIncident | Ignored
)


class BadEvent(ValueError):
    """An event without the fields its type needs. Logged and skipped, never retried."""

"""Which playbooks answer an event, and what follows. Pure:
(event, open incidents, playbooks, now) -> decisions.

Incidents have one of two scopes:
- a *site* (citizen reports, correlated by distance and time), or
- a *district* (official warnings and threshold crossings): one incident per playbook
  and district, whose level follows the strongest trigger in force. An upgrade
  (yellow -> orange) changes that incident's level; it never opens a second one.

The playbooks come indexed (playbooks/index.py); events and decisions are in
pingan/core/events.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from pingan.core.events import (
    AttachToIncident,
    Decision,
    EndWarnings,
    Event,
    Ignored,
    IncidentView,
    OpenIncident,
    ReportReceived,
    ResolveIncident,
    ThresholdCrossed,
    UpgradeIncident,
    WarningSignal,
)
from pingan.geo import distance_m
from pingan.vocabulary import level_rank
from playbooks.index import PlaybookIndex
from playbooks.model import Playbook, ReportTrigger, ThresholdTrigger, WarningTrigger


def match(
    event: Event, open_incidents: Sequence[IncidentView], index: PlaybookIndex, now: datetime
) -> list[Decision]:
    if isinstance(event, ReportReceived):
        return [_match_report(event, open_incidents, index)]
    if isinstance(event, WarningSignal):
        if event.msg_type == "Cancel":
            return _match_cancel(event, open_incidents)
        return _match_warning(event, open_incidents, index)
    if isinstance(event, ThresholdCrossed):
        if event.cleared:
            return _match_cleared(event, open_incidents)
        return _match_threshold(event, open_incidents, index)
    return _expire(open_incidents, now)


def report_level(playbook: Playbook, category: str, count: int) -> str:
    """The strongest level the report triggers of `category` reach with `count`
    corroborating reports; 'watch' when none is reached yet."""
    reached = [
        t.level
        for t in playbook.triggers
        if isinstance(t, ReportTrigger) and t.category == category and t.min_reports <= count
    ]
    return max(reached, key=level_rank) if reached else "watch"


def _match_report(
    event: ReportReceived, open_incidents: Sequence[IncidentView], index: PlaybookIndex
) -> Decision:
    playbook = index.for_report(event.category)
    best: tuple[float, IncidentView] | None = None
    if event.lat is not None and event.lon is not None:
        for inc in open_incidents:
            corr = inc.playbook.correlation
            if (
                inc.scope != "site"
                or corr is None
                or inc.lat is None
                or inc.lon is None
                or not _has_report_trigger(inc.playbook, event.category)
            ):
                continue
            if inc.last_report_at and event.at - inc.last_report_at > timedelta(
                minutes=corr.window_min
            ):
                continue
            dist = distance_m(event.lat, event.lon, inc.lat, inc.lon)
            if dist <= corr.radius_m and (best is None or dist < best[0]):
                best = (dist, inc)
    if best is not None:
        dist, inc = best
        count = inc.report_count + 1
        level = report_level(inc.playbook, event.category, count)
        if level_rank(level) > level_rank(inc.level):
            return UpgradeIncident(
                inc.id, inc.level, level, f"{count} reports corroborate incident {inc.id}"
            )
        return AttachToIncident(
            inc.id, f"report {event.report_id} is {dist:.0f} m from incident {inc.id}", dist
        )
    if playbook is None:
        return Ignored(f"no playbook handles reports of category {event.category!r}")
    level = report_level(playbook, event.category, 1)
    why = f"report {event.report_id} matched playbook {playbook.id} v{playbook.version}"
    if level == "watch":
        why += " (waiting for corroborating reports)"
    return OpenIncident(playbook, level, "site", why, event.district, event.lat, event.lon)


def _has_report_trigger(playbook: Playbook, category: str) -> bool:
    return any(isinstance(t, ReportTrigger) and t.category == category for t in playbook.triggers)


def _district_incident(
    open_incidents: Sequence[IncidentView], playbook_id: str, district: str
) -> IncidentView | None:
    for inc in open_incidents:
        if inc.scope == "district" and inc.district == district and inc.playbook.id == playbook_id:
            return inc
    return None


def _raise_or_open(
    playbook: Playbook, level: str, district: str, open_incidents: Sequence[IncidentView], why: str
) -> Decision:
    current = _district_incident(open_incidents, playbook.id, district)
    if current is None:
        return OpenIncident(playbook, level, "district", why, district)
    if level_rank(level) > level_rank(current.level):
        return UpgradeIncident(current.id, current.level, level, why)
    return AttachToIncident(current.id, f"{why}; response stays at {current.level}")


def _covers(playbook: Playbook, district: str) -> bool:
    return not playbook.districts or district in playbook.districts


def _match_warning(
    event: WarningSignal, open_incidents: Sequence[IncidentView], index: PlaybookIndex
) -> list[Decision]:
    decisions: list[Decision] = []
    for hit in index.warning_hits(event.event):
        trigger = hit.trigger
        assert isinstance(trigger, WarningTrigger)
        if level_rank(event.level) < level_rank(trigger.min_level):
            decisions.append(
                Ignored(
                    f"{hit.playbook.id}: {event.event} {event.level} is "
                    f"below its {trigger.min_level} minimum"
                )
            )
            continue
        why = f"{event.event} {event.level} warning {event.id} ({event.msg_type})"
        for district in event.districts:
            if _covers(hit.playbook, district):
                decisions.append(
                    _raise_or_open(hit.playbook, event.level, district, open_incidents, why)
                )
    decisions.extend(_supersede(event, open_incidents))
    return decisions or [Ignored(f"no playbook acts on {event.event} {event.level}")]


def _supersede(event: WarningSignal, open_incidents: Sequence[IncidentView]) -> list[Decision]:
    """A CAP Update replaces the messages it references: in the districts it still
    covers the new message takes over; elsewhere the old warning has ended."""
    old = set(event.references)
    decisions: list[Decision] = []
    for inc in open_incidents:
        linked = old & set(inc.warnings)
        if not linked:
            continue
        if inc.district in event.districts:
            decisions.append(
                EndWarnings(inc.id, tuple(sorted(linked)), f"superseded by {event.id}")
            )
        else:
            decisions.extend(
                _ends(
                    inc,
                    linked,
                    "warning_cancelled",
                    f"warning {event.id} no longer covers {inc.district}",
                )
            )
    return decisions


def _ends(inc: IncidentView, ended: set[str], reason_key: str, why: str) -> list[Decision]:
    """Warnings `ended` stop driving `inc`; resolve it if nothing else does and the
    playbook resolves for `reason_key`."""
    decisions: list[Decision] = [EndWarnings(inc.id, tuple(sorted(ended & set(inc.warnings))), why)]
    still = [w for w in inc.warnings if w not in ended]
    if not still and not inc.thresholds_active and reason_key in inc.playbook.resolution.when:
        decisions.append(ResolveIncident(inc.id, why))
    return decisions


def _match_cancel(event: WarningSignal, open_incidents: Sequence[IncidentView]) -> list[Decision]:
    ended = {event.id, *event.references}
    decisions = [
        d
        for inc in open_incidents
        if ended & set(inc.warnings)
        for d in _ends(inc, ended, "warning_cancelled", f"warning {event.id} cancelled")
    ]
    return decisions or [
        Ignored(f"cancel {event.id}: no open incident follows {', '.join(sorted(ended))}")
    ]


def _match_threshold(
    event: ThresholdCrossed, open_incidents: Sequence[IncidentView], index: PlaybookIndex
) -> list[Decision]:
    best: dict[str, tuple[Playbook, str]] = {}
    for hit in index.threshold_hits(event.metric, event.window_h):
        trigger = hit.trigger
        assert isinstance(trigger, ThresholdTrigger)
        reached = (
            event.value >= trigger.value if trigger.op == ">=" else event.value <= trigger.value
        )
        if not reached or not _covers(hit.playbook, event.district):
            continue
        seen = best.get(hit.playbook.id)
        if seen is None or level_rank(trigger.level) > level_rank(seen[1]):
            best[hit.playbook.id] = (hit.playbook, trigger.level)
    why = f"{event.metric} over {event.window_h} h = {event.value:g} in {event.district}"
    decisions = [
        _raise_or_open(playbook, level, event.district, open_incidents, why)
        for playbook, level in best.values()
    ]
    return decisions or [Ignored(f"{why}: no threshold reached")]


def _match_cleared(
    event: ThresholdCrossed, open_incidents: Sequence[IncidentView]
) -> list[Decision]:
    why = f"{event.metric} over {event.window_h} h back to {event.value:g} in {event.district}"
    decisions: list[Decision] = []
    for inc in open_incidents:
        if inc.scope != "district" or inc.district != event.district or not inc.thresholds_active:
            continue
        if not any(
            isinstance(t, ThresholdTrigger) and t.metric == event.metric
            for t in inc.playbook.triggers
        ):
            continue
        if inc.warnings:
            decisions.append(AttachToIncident(inc.id, f"{why}; warnings still in force"))
        elif "threshold_cleared" in inc.playbook.resolution.when:
            decisions.append(ResolveIncident(inc.id, why))
    return decisions or [Ignored(f"{why}: nothing to clear")]


def _expire(open_incidents: Sequence[IncidentView], now: datetime) -> list[Decision]:
    decisions: list[Decision] = []
    for inc in open_incidents:
        if not inc.warnings:
            continue
        expired = {w for w, until in inc.warnings.items() if until is not None and until <= now}
        if expired:
            decisions.extend(
                _ends(
                    inc, expired, "warning_expired", f"warning {', '.join(sorted(expired))} expired"
                )
            )
    return decisions

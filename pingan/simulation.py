"""`pingan playbooks simulate`: what the system would do for a recorded sequence of
events, step by step in simulated time, without sending or persisting anything.

The events file is YAML: a list of events, each with `at` (ISO 8601 with zone) and
`kind` (warning, threshold, report, tick), e.g.

    - {at: "2026-01-20T05:00+08:00", kind: threshold, metric: snowfall_mm, window_h: 12,
       value: 4.6, district: yuanhui}
    - {at: "2026-01-20T06:00+08:00", kind: warning, id: W1, msg_type: Alert,
       event: blizzard, level: yellow, districts: [yuanhui], expires: "..."}
    - {at: "2026-01-20T07:10+08:00", kind: report, category: snow_ice, lat: 33.57, long: 114.01}
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import yaml

from pingan.city import load_city
from pingan.core.events import (
    AttachToIncident,
    ClockTick,
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
from pingan.core.matching import match
from pingan.crews import Crew, choose_crews
from pingan.warnings import WarningInvalid, parse_signal
from playbooks.index import PlaybookIndex
from playbooks.model import Playbook


class EventsFileError(ValueError):
    pass


def parse_events(text: str, file: str) -> list[Event]:
    try:
        items = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise EventsFileError(f"{file}: not valid YAML: {exc}") from None
    if not isinstance(items, list):
        raise EventsFileError(f"{file}: expected a list of events")
    events: list[Event] = []
    for n, item in enumerate(items, start=1):
        where = f"{file}: event {n}"
        if not isinstance(item, dict):
            raise EventsFileError(f"{where}: expected a mapping")
        try:
            at = datetime.fromisoformat(str(item["at"]))
            kind = item["kind"]
            if kind == "warning":
                events.append(dataclasses.replace(parse_signal(item, at), at=at))
            elif kind == "threshold":
                events.append(
                    ThresholdCrossed(
                        str(item["metric"]),
                        int(item["window_h"]),
                        float(item["value"]),
                        str(item["district"]),
                        at,
                        bool(item.get("cleared", False)),
                    )
                )
            elif kind == "report":
                events.append(
                    ReportReceived(
                        int(item.get("id", n)),
                        str(item["category"]),
                        _opt(item, "lat"),
                        _opt(item, "long"),
                        at,
                    )
                )
            elif kind == "tick":
                events.append(ClockTick(at))
            else:
                raise EventsFileError(
                    f"{where}: kind {kind!r} is not warning, threshold, report or tick"
                )
        except KeyError as exc:
            raise EventsFileError(f"{where}: missing {exc.args[0]!r}") from None
        except (TypeError, ValueError, WarningInvalid) as exc:
            if isinstance(exc, EventsFileError):
                raise
            raise EventsFileError(f"{where}: {exc}") from None
        if at.tzinfo is None:
            raise EventsFileError(f"{where}: 'at' needs a time zone")
    return sorted(events, key=lambda e: e.at)


def _opt(item: dict[str, Any], key: str) -> float | None:
    return float(item[key]) if item.get(key) is not None else None


@dataclass
class _SimIncident:
    view: IncidentView
    assigned: dict[str, list[str]] = field(default_factory=dict)  # skill -> crew ids


def _describe(event: Event) -> str:
    if isinstance(event, WarningSignal):
        refs = f" (references {', '.join(event.references)})" if event.references else ""
        return (
            f"warning {event.id} {event.msg_type}: {event.event} {event.level} for "
            f"{', '.join(event.districts)}{refs}"
        )
    if isinstance(event, ThresholdCrossed):
        verb = "cleared" if event.cleared else "reached"
        return (
            f"threshold {verb}: {event.metric} over {event.window_h} h = {event.value:g} "
            f"in {event.district}"
        )
    if isinstance(event, ReportReceived):
        return f"report {event.report_id}: {event.category} at {event.lat}, {event.lon}"
    return "clock tick"


def simulate(
    events: Sequence[Event], index: PlaybookIndex, roster: Sequence[Crew], only: str | None = None
) -> list[str]:
    """The plan, as lines of text. `only` limits it to one playbook's incidents."""
    if only is not None:
        index = PlaybookIndex([index.playbooks[only]])
    city = load_city()
    incidents: dict[int, _SimIncident] = {}
    load: dict[str, int] = {}
    lines: list[str] = []
    next_id = 1
    for event in events:
        lines.append(f"{event.at.isoformat(timespec='minutes')}  {_describe(event)}")
        open_views = [s.view for s in incidents.values()]
        decisions = match(event, open_views, index, event.at)
        for decision in decisions:
            lines.extend(
                f"    {line}"
                for line in _apply(decision, event, incidents, load, roster, city, next_id)
            )
            if isinstance(decision, OpenIncident):
                next_id += 1
    return lines


def _apply(
    decision: Decision,
    event: Event,
    incidents: dict[int, _SimIncident],
    load: dict[str, int],
    roster: Sequence[Crew],
    city: Any,
    next_id: int,
) -> list[str]:
    out: list[str] = []
    match decision:
        case OpenIncident(playbook=playbook, level=level):
            lat, lon = decision.lat, decision.lon
            if lat is None and decision.district in city.districts:
                d = city.districts[decision.district]
                lat, lon = d.lat, d.lon
            view = IncidentView(
                next_id, playbook, level, decision.scope, decision.district, lat, lon
            )
            sim = _SimIncident(_with_source(view, event))
            incidents[next_id] = sim
            where = decision.district or f"{lat}, {lon}"
            out.append(
                f"OPEN incident {next_id}: {playbook.id} v{playbook.version} at "
                f"level {level} ({decision.scope} {where}) - {decision.reason}"
            )
            out += _actions(sim, playbook, level, load, roster, event.at)
        case UpgradeIncident(incident_id=iid, from_level=old, to_level=new):
            sim = incidents[iid]
            sim.view = _with_source(dataclasses.replace(sim.view, level=new), event)
            out.append(f"UPGRADE incident {iid}: {old} -> {new} - {decision.reason}")
            out += _actions(sim, sim.view.playbook, new, load, roster, event.at)
        case AttachToIncident(incident_id=iid):
            sim = incidents[iid]
            sim.view = _with_source(sim.view, event)
            out.append(f"ATTACH to incident {iid} - {decision.reason}")
        case EndWarnings(incident_id=iid, warning_ids=ended):
            sim = incidents[iid]
            left = {w: t for w, t in sim.view.warnings.items() if w not in ended}
            sim.view = dataclasses.replace(sim.view, warnings=left)
            out.append(f"END warnings {', '.join(ended)} on incident {iid} - {decision.reason}")
        case ResolveIncident(incident_id=iid):
            sim = incidents.pop(iid)
            for crews in sim.assigned.values():
                for crew_id in crews:
                    load[crew_id] -= 1
            out.append(f"RESOLVE incident {iid} - {decision.reason}; crews stand down")
        case Ignored(reason=reason):
            out.append(f"no action: {reason}")
    if isinstance(event, ThresholdCrossed) and event.cleared:
        for sim in incidents.values():
            if sim.view.district == event.district:
                sim.view = dataclasses.replace(sim.view, thresholds_active=False)
    return out


def _with_source(view: IncidentView, event: Event) -> IncidentView:
    if isinstance(event, WarningSignal):
        return dataclasses.replace(view, warnings={**view.warnings, event.id: event.expires})
    if isinstance(event, ThresholdCrossed) and not event.cleared:
        return dataclasses.replace(view, thresholds_active=True)
    if isinstance(event, ReportReceived):
        return dataclasses.replace(
            view, report_count=view.report_count + 1, last_report_at=event.at
        )
    return view


def _actions(
    sim: _SimIncident,
    playbook: Playbook,
    level: str,
    load: dict[str, int],
    roster: Sequence[Crew],
    now: datetime,
) -> list[str]:
    actions = playbook.actions_at(level)
    out: list[str] = []
    if level == "watch":
        return ["waiting for corroborating reports: no action yet"]
    for action in actions.dispatch:
        have = sim.assigned.setdefault(action.skill, [])
        wanted = action.crews - len(have)
        if wanted <= 0:
            out.append(f"dispatch {action.skill}: {len(have)} crew(s) already on it")
            continue
        exclude = frozenset(c for crews in sim.assigned.values() for c in crews)
        chosen = choose_crews(
            action.skill,
            wanted,
            sim.view.lat,
            sim.view.lon,
            roster,
            load,
            exclude,
            action.equipment,
            now=now,
        )
        for choice in chosen:
            have.append(choice.crew.id)
            load[choice.crew.id] = load.get(choice.crew.id, 0) + 1
            due = (now + timedelta(minutes=action.ack_within_min)).strftime("%H:%M")
            out.append(
                f"dispatch {action.skill} crew {choice.crew.id} ({choice.why}); ack by {due}"
            )
        if len(chosen) < wanted:
            out.append(
                f"UNSTAFFED: {wanted - len(chosen)} x {action.skill} missing; supervisor alerted"
            )
        if action.targets:
            out.append(f"  priorities: {', '.join(action.targets)}")
    for step in actions.escalation:
        at = (now + timedelta(minutes=step.after_min)).strftime("%H:%M")
        out.append(f"if no ack by {at}: notify {', '.join(step.notify)}")
    for notice in actions.notify_citizens:
        who = "all districts" if notice.districts == "all" else (sim.view.district or "nearby")
        out.append(
            f"warn citizens in {who}: template {notice.template} via "
            f"{', '.join(notice.channels)} (approval {notice.approval})"
        )
    for staff in actions.notify_staff:
        out.append(f"notify {staff.role}")
    return out

"""`pingan playbooks simulate`: what the system would do for a recorded sequence of
events, step by step in simulated time, without sending anything or touching the
system's data.

The dry run is the real run: the events go through the same intake commands and the
same stream handlers the worker runs (matching, dispatch, escalation timers, message
rendering), on a throwaway SQLite database, with a clock that jumps from event to
event and to each timer as it falls due. Messages are recorded, not sent. So a duty
officer's dry run cannot drift from what the system does.

The events file is YAML: a list of events, each with `at` (ISO 8601 with zone) and
`kind` (warning, threshold, report, crew, tick), e.g.

    - {at: "2026-01-20T05:00+08:00", kind: threshold, metric: snowfall_mm, window_h: 12,
       value: 4.6, district: yuanhui}
    - {at: "2026-01-20T06:00+08:00", kind: warning, id: W1, msg_type: Alert,
       event: blizzard, level: yellow, districts: [yuanhui], expires: "..."}
    - {at: "2026-01-20T07:10+08:00", kind: report, category: snow_ice, lat: 33.57, long: 114.01}
    - {at: "2026-01-20T07:20+08:00", kind: crew, crew: snow-yuanhui-1, action: ack}

A crew that never answers is simply not in the file: the escalation follows.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import func, select

from alerts.channels.base import Channel, Message
from alerts.pipeline import Sender
from pingan.actions import apply_crew_action, sync_roster
from pingan.clock import utcnow
from pingan.core import topics
from pingan.core.assignments import ACTIVE_STATES, CrewAction, TransitionRefused
from pingan.core.events import (
    ClockTick,
    Event,
    ReportReceived,
    ThresholdCrossed,
    WarningSignal,
)
from pingan.crews import CITY_TZ, Roster
from pingan.dispatch.timers import fire_due_timers
from pingan.intake.accept import accept_report, accept_warning
from pingan.intake.reports import ReportDraft
from pingan.intake.warnings import WarningInvalid, parse_signal, threshold_to_event
from pingan.privacy import mask_phone
from pingan.store import Store, as_utc, emit
from pingan.store.schema import assignments, audit, incidents, outbox, timers
from playbooks.index import PlaybookIndex
from streams import handlers


class EventsFileError(ValueError):
    pass


@dataclass(frozen=True)
class CrewMove:
    """A crew's reply in the events file: `{kind: crew, crew: ID, action: ack}`."""

    at: datetime
    crew: str
    action: CrewAction


Step = Event | CrewMove


def parse_events(text: str, file: str) -> list[Step]:
    try:
        items = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise EventsFileError(f"{file}: not valid YAML: {exc}") from None
    if not isinstance(items, list):
        raise EventsFileError(f"{file}: expected a list of events")
    events: list[Step] = []
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
            elif kind == "crew":
                action = CrewAction(str(item["action"]))
                events.append(CrewMove(at, str(item["crew"]), action))
            elif kind == "tick":
                events.append(ClockTick(at))
            else:
                raise EventsFileError(
                    f"{where}: kind {kind!r} is not warning, threshold, report, crew or tick"
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


def _describe(event: Step) -> str:
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
    if isinstance(event, CrewMove):
        return f"crew {event.crew}: {event.action.value}"
    if isinstance(event, ReportReceived):
        return f"report {event.report_id}: {event.category} at {event.lat}, {event.lon}"
    return "clock tick"


@dataclass
class Outcome:
    """What a run did, in a form two runs can be compared by (the parity test)."""

    incidents: list[tuple[Any, ...]] = field(default_factory=list)
    assignments: list[tuple[Any, ...]] = field(default_factory=list)
    messages: list[tuple[str, str]] = field(default_factory=list)  # (recipient, body)


class RecordingChannel:
    """A channel that keeps what it was given; the dry run sends nothing."""

    def __init__(self, name: str, sent: list[tuple[str, str]]) -> None:
        self.name, self._sent = name, sent

    async def send(self, message: Message) -> str:
        self._sent.append((message.recipient, message.body))
        return f"dry-run-{len(self._sent)}"


class DryRun:
    """The worker's handlers driven in order on a simulated clock."""

    def __init__(self, store: Store, index: PlaybookIndex) -> None:
        self.store, self.index = store, index
        self.sent: list[tuple[str, str]] = []
        sms = RecordingChannel("sms", self.sent)
        self.channels: dict[str, Channel] = {
            "sms": sms,
            "wechat": RecordingChannel("wechat", self.sent),
        }
        self.sender = Sender(store, self.channels)
        self._cursor = 0

    def feed(self, event: Step) -> None:
        """Everything due before the event happens first, then the event, then all
        that follows from it."""
        now = event.at.astimezone(UTC)
        self.run_until(now)
        if isinstance(event, WarningSignal):
            accept_warning(self.store, event, "", SIMULATION, now)
        elif isinstance(event, ThresholdCrossed):
            with self.store.transaction() as conn:
                payload = {"type": "threshold.changed", "threshold": threshold_to_event(event)}
                emit(conn, topics.WEATHER, event.district, payload, now)
        elif isinstance(event, CrewMove):
            self._crew_move(event, now)
        elif isinstance(event, ReportReceived):
            draft = ReportDraft(event.category, event.lat, event.lon, None, "", None)
            accept_report(self.store, draft, SIMULATION, SIMULATION, now)
        else:
            handlers.handle_clock_tick(self.store, self.index, now)
        self.drain(now)

    def _crew_move(self, move: CrewMove, now: datetime) -> None:
        """The crew's newest assignment still open takes the move, as if it replied."""
        with self.store.read() as conn:
            assignment = conn.execute(
                select(assignments.c.id)
                .where(assignments.c.crew_id == move.crew, assignments.c.state.in_(ACTIVE_STATES))
                .order_by(assignments.c.id.desc())
            ).scalar()
        if assignment is None:
            return  # nothing to answer: the dry run shows no move
        # A refused move is in the audit trail, as in the real run.
        with contextlib.suppress(TransitionRefused):
            apply_crew_action(self.store, assignment, move.action, move.crew, now)

    def run_until(self, now: datetime) -> None:
        """Fire each timer at its own due time, up to `now`."""
        while (due := self._next_timer()) is not None and due <= now:
            fire_due_timers(self.store, due)
            self.drain(due)

    def _next_timer(self) -> datetime | None:
        with self.store.read() as conn:
            due = conn.execute(
                select(func.min(timers.c.due_at)).where(timers.c.fired_at.is_(None))
            ).scalar_one()
        return as_utc(due) if due is not None else None

    def drain(self, now: datetime) -> None:
        """Hand every queued event to the handler of its topic, oldest first, until
        nothing follows."""
        while True:
            with self.store.read() as conn:
                rows = conn.execute(
                    select(outbox.c.id, outbox.c.topic, outbox.c.payload)
                    .where(outbox.c.id > self._cursor)
                    .order_by(outbox.c.id)
                ).all()
            if not rows:
                return
            for row in rows:
                self._cursor = row.id
                self._handle(row.topic, dict(row.payload), now)

    def _handle(self, topic: str, event: dict[str, Any], now: datetime) -> None:
        if topic == topics.REPORTS:
            handlers.handle_report_accepted(self.store, self.index, event, now)
        elif topic == topics.WEATHER:
            handlers.handle_weather_event(self.store, self.index, event, now)
        elif topic == topics.INCIDENTS:
            handlers.handle_incident_event(self.store, event, now)
        elif topic == topics.CREW_EVENTS:
            handlers.handle_crew_event(self.store, event, now)
        elif topic == topics.NOTIFICATIONS:
            asyncio.run(handlers.handle_notification(self.store, self.sender, event, now))
        elif topic in (topics.SENDS_URGENT, topics.SENDS_ROUTINE):
            asyncio.run(handlers.handle_send_chunk(self.store, self.sender, event, now))

    def outcome(self) -> Outcome:
        with self.store.read() as conn:
            found = Outcome(messages=list(self.sent))
            found.incidents = [
                tuple(r)
                for r in conn.execute(
                    select(
                        incidents.c.id,
                        incidents.c.playbook_id,
                        incidents.c.level,
                        incidents.c.status,
                        incidents.c.district,
                    ).order_by(incidents.c.id)
                )
            ]
            found.assignments = [
                tuple(r)
                for r in conn.execute(
                    select(
                        assignments.c.incident_id, assignments.c.crew_id, assignments.c.state
                    ).order_by(assignments.c.id)
                )
            ]
        return found

    def audit_since(self, after: int) -> tuple[int, list[str]]:
        with self.store.read() as conn:
            rows = conn.execute(select(audit).where(audit.c.id > after).order_by(audit.c.id)).all()
        lines = [
            f"    {_local(as_utc(r.at))} {r.action} {r.entity} {r.entity_id}{_details(r.detail)}"
            for r in rows
        ]
        return (rows[-1].id if rows else after), lines


SIMULATION = "simulation"


def _local(at: datetime) -> str:
    return at.astimezone(CITY_TZ).strftime("%H:%M")


def _details(detail: dict[str, Any] | None) -> str:
    if not detail:
        return ""
    shown = {k: v for k, v in detail.items() if k not in ("snapshot",)}
    return " " + ", ".join(f"{k}={v}" for k, v in shown.items())


def simulate(
    events: Sequence[Step], index: PlaybookIndex, roster: Roster, only: str | None = None
) -> list[str]:
    """The run, as lines of text: each event, then what the system did because of it
    (its audit trail) and the messages it would have sent. `only` limits the run to
    one playbook."""
    if only is not None:
        index = PlaybookIndex([index.playbooks[only]])
    lines: list[str] = []
    with dry_run(index, roster, events[0].at if events else None) as run:
        seen, sent = run.audit_since(0)[0], 0  # the roster's loading is not news

        def happened() -> None:
            nonlocal seen, sent
            seen, done = run.audit_since(seen)
            lines.extend(done)
            for recipient, body in run.sent[sent:]:
                lines.append(f"    message to {mask_phone(recipient)}: {body.splitlines()[0]}")
            sent = len(run.sent)

        for event in events:
            run.run_until(event.at.astimezone(UTC))  # timers falling due in between
            happened()
            lines.append(f"{_local(event.at)} {_describe(event)}")
            run.feed(event)
            happened()
    return lines


@contextmanager
def dry_run(index: PlaybookIndex, roster: Roster, start: datetime | None) -> Iterator[DryRun]:
    """A DryRun on a throwaway database that is gone afterwards."""
    with tempfile.TemporaryDirectory(prefix="pingan-dry-run-") as folder:
        store = Store(f"sqlite:///{Path(folder) / 'dry-run.db'}")
        store.create_schema()
        try:
            sync_roster(store, roster, (start or utcnow()).astimezone(UTC))
            yield DryRun(store, index)
        finally:
            store.dispose()

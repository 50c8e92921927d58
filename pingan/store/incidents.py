"""The store side of the matcher: read open incidents as the matcher sees them, and
write its decisions (open, upgrade, attach, end warnings, resolve) with history, audit
and follow-up events, inside the caller's transaction."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Text, bindparam, cast, func, insert, select, text, update

from pingan.city import load_city
from pingan.core import topics
from pingan.core.assignments import ACTIVE_STATES
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
from pingan.store import SYSTEM, as_utc, emit, record_audit
from pingan.store.assignments import cancel_open_assignments
from pingan.store.db import SCRATCH, read_ahead, scratch, take_read_ahead, write_at_commit
from pingan.store.schema import (
    OPEN_SITE,
    OPEN_SITE_WITH_RADIUS,
    incident_history,
    incident_warnings,
    incidents,
    reports,
)
from pingan.vocabulary import IncidentStatus
from playbooks.model import Playbook
from playbooks.snapshot import playbook_from_snapshot, snapshot_of

log = logging.getLogger("pingan.incidents")


def set_incident_status(
    conn: Connection,
    incident_id: int,
    old: str | None,
    new: str,
    reason: str,
    now: datetime,
    outcome: str | None = None,
) -> None:
    """Change an incident's status with its history row; a resolution is announced
    (reporters hear back, dispatch stands down) whichever path resolved it.
    `outcome`: what was done, in words a reporter reads (a dispatcher's note)."""
    values: dict[str, Any] = {"status": new, "updated_at": now}
    if new == IncidentStatus.RESOLVED:
        values["resolved_at"] = now
    conn.execute(UPDATE_INCIDENT, {"incident_key": incident_id, **values})
    write_at_commit(
        conn,
        _HISTORY_INSERT,
        dict(incident_id=incident_id, at=now, from_status=old, to_status=new, reason=reason),
    )
    if new == IncidentStatus.RESOLVED:
        emit(
            conn,
            topics.INCIDENTS,
            str(incident_id),
            {"type": "incident.resolved", "incident_id": incident_id}
            | ({"outcome": outcome} if outcome else {}),
            now,
        )


# Statements that run for every event of a storm are built once, with bound
# parameters: building a SQLAlchemy statement costs several times what SQLite takes
# to run it. An update sets the columns its parameters name; `incident_key` is the
# row's id (a bind may not share a column's name).
UPDATE_INCIDENT = update(incidents).where(incidents.c.id == bindparam("incident_key"))
_HISTORY_INSERT = insert(incident_history)
_INCIDENT_INSERT = insert(incidents)
_LINK_REPORT = update(reports).where(reports.c.id == bindparam("report_key"))

# An incident's row with its playbook snapshot as text: parsed playbooks are cached by
# that text (playbooks/snapshot.py), so no event decodes and re-encodes the JSON.
_ROW_COLUMNS = [
    *(c for c in incidents.c if c.name != "playbook_snapshot"),
    cast(incidents.c.playbook_snapshot, Text).label("playbook_snapshot"),
]
_INCIDENT_ROW = select(*_ROW_COLUMNS).where(incidents.c.id == bindparam("incident_id"))
_INCIDENT_ROW_LOCKED = _INCIDENT_ROW.with_for_update()
# Locked in id order: two transactions locking overlapping sets then never deadlock
# on each other's incidents.
_INCIDENT_ROWS_LOCKED = (
    select(*_ROW_COLUMNS)
    .where(incidents.c.id.in_(bindparam("ids", expanding=True)))
    .order_by(incidents.c.id)
    .with_for_update()
)


def incident_row(conn: Connection, incident_id: int, *, lock: bool = False) -> Any:
    """The incident's row (None if there is none); `lock` takes its row lock
    (PostgreSQL; SQLite has one writer), held to the end of the transaction."""
    statement = _INCIDENT_ROW_LOCKED if lock else _INCIDENT_ROW
    return _amended(conn, conn.execute(statement, {"incident_id": incident_id}).first())


def locked_incident_rows(conn: Connection, incident_ids: Iterable[int]) -> list[Any]:
    """Several incidents' rows (as incident_row reads one), locked in id order."""
    ids = sorted(set(incident_ids))
    rows = conn.execute(_INCIDENT_ROWS_LOCKED, {"ids": ids}).all() if ids else []
    return [_amended(conn, r) for r in rows]


# Whether an incident is short of crews is written when the transaction commits (a
# storm's dispatch batch flags one incident after another): incident id -> the flag.
_UNSTAFFED = "unstaffed_at_commit"
_SET_UNSTAFFED = (
    update(incidents)
    .where(incidents.c.id == bindparam("incident_key"))
    .values(unstaffed=bindparam("flag"))
)


def set_unstaffed(conn: Connection, incident_id: int, unstaffed: bool) -> None:
    """Flag the incident as short of crews (or not), written at commit; the rows this
    transaction reads meanwhile (incident_row) show it already."""
    write_at_commit(conn, _SET_UNSTAFFED, {"incident_key": incident_id, "flag": int(unstaffed)})
    memo = conn.info.get(SCRATCH)
    if memo is not None:
        memo.setdefault(_UNSTAFFED, {})[incident_id] = int(unstaffed)


class _Amended:
    """An incident's row as this transaction has changed it, before the change is
    written (set_unstaffed)."""

    def __init__(self, row: Any, unstaffed: int) -> None:
        self._row, self.unstaffed = row, unstaffed

    def __getattr__(self, name: str) -> Any:
        return getattr(self._row, name)


def _amended(conn: Connection, row: Any) -> Any:
    if row is None:
        return None
    pending = scratch(conn).get(_UNSTAFFED, {})
    return _Amended(row, pending[row.id]) if row.id in pending else row


OPEN_STATUSES = tuple(s.value for s in IncidentStatus if s != IncidentStatus.RESOLVED)
_M_PER_DEG_LAT = 111_320.0


def _view_columns() -> list[Any]:
    return [
        incidents.c.id,
        incidents.c.level,
        incidents.c.scope,
        incidents.c.district,
        incidents.c.lat,
        incidents.c.lon,
        incidents.c.thresholds_active,
        cast(incidents.c.playbook_snapshot, Text).label("snapshot"),
    ]


# Open site incidents, in the words of the partial indexes that hold them (as text: a
# bound parameter would hide from the planner that the index covers the query).
_OPEN_SITE = text(OPEN_SITE)
_CANDIDATES = select(*_view_columns()).where(
    incidents.c.playbook_id.in_(bindparam("playbook_ids", expanding=True)),
    _OPEN_SITE,
    incidents.c.lat.between(bindparam("lat_lo"), bindparam("lat_hi")),
    incidents.c.lon.between(bindparam("lon_lo"), bindparam("lon_hi")),
)
_LARGEST_RADIUS = select(func.max(incidents.c.correlation_radius_m)).where(
    incidents.c.playbook_id == bindparam("playbook_id"), text(OPEN_SITE_WITH_RADIUS)
)
_REPORT_COUNTS = (
    select(
        reports.c.incident_id,
        func.count().label("n"),
        func.max(reports.c.received_at).label("last_at"),
    )
    .where(reports.c.incident_id.in_(bindparam("ids", expanding=True)))
    .group_by(reports.c.incident_id)
)
_ACTIVE_WARNINGS = select(incident_warnings).where(
    incident_warnings.c.incident_id.in_(bindparam("ids", expanding=True)),
    incident_warnings.c.state == "active",
)


def load_open_incidents(
    conn: Connection, playbook_ids: Iterable[str] | None = None
) -> list[IncidentView]:
    """Open incidents, limited to `playbook_ids` when given."""
    query = select(*_view_columns()).where(incidents.c.status.in_(OPEN_STATUSES))
    if playbook_ids is not None:
        query = query.where(incidents.c.playbook_id.in_(list(playbook_ids)))
    return _views(conn, conn.execute(query).all())


def load_report_candidates(
    conn: Connection, event: ReportReceived, playbook_ids: Sequence[str]
) -> list[IncidentView]:
    """The open site incidents a report could belong to: of its playbooks, within the
    largest correlation radius any of them has. Both lookups go through indexes, so a
    report costs the same with ten open incidents or ten thousand. Read ahead for the
    batch (read_candidates_ahead) unless this transaction has opened or changed an
    incident inside the report's box since."""
    box = _search_box(conn, event, playbook_ids)
    if box is None:
        return []
    ahead = take_read_ahead(conn, _CANDIDATES_AHEAD, event.report_id)
    if ahead is not None and not _changed_inside(conn, box):
        return list(ahead)
    rows = conn.execute(_CANDIDATES, {"playbook_ids": list(playbook_ids), **box}).all()
    return _views(conn, rows)


def _search_box(
    conn: Connection, event: ReportReceived, playbook_ids: Sequence[str]
) -> dict[str, float] | None:
    if event.lat is None or event.lon is None or not playbook_ids:
        return None
    radius = max(_largest_radius(conn, playbook_id) for playbook_id in playbook_ids)
    if radius <= 0:
        return None
    dlat = radius / _M_PER_DEG_LAT
    dlon = radius / (_M_PER_DEG_LAT * max(math.cos(math.radians(event.lat)), 0.01))
    return {
        "lat_lo": event.lat - dlat,
        "lat_hi": event.lat + dlat,
        "lon_lo": event.lon - dlon,
        "lon_hi": event.lon + dlon,
    }


# PostgreSQL: every box of a batch in one statement. OFFSET 0 keeps the subquery a
# subquery, so each box is one search of the open-incidents index, whatever the planner
# guesses of a table it may not have analysed yet.
_CANDIDATES_OF_BOXES = text(
    "SELECT b.n, c.* FROM unnest(CAST(:n AS INTEGER[]), CAST(:playbook AS VARCHAR[]), "
    "CAST(:lat_lo AS FLOAT8[]), CAST(:lat_hi AS FLOAT8[]), CAST(:lon_lo AS FLOAT8[]), "
    "CAST(:lon_hi AS FLOAT8[])) AS b(n, playbook, lat_lo, lat_hi, lon_lo, lon_hi) "
    "CROSS JOIN LATERAL (SELECT incidents.id, incidents.level, incidents.scope, "
    "incidents.district, incidents.lat, incidents.lon, incidents.thresholds_active, "
    "CAST(incidents.playbook_snapshot AS TEXT) AS snapshot FROM incidents "
    f"WHERE incidents.playbook_id = b.playbook AND {OPEN_SITE} "
    "AND incidents.lat BETWEEN b.lat_lo AND b.lat_hi "
    "AND incidents.lon BETWEEN b.lon_lo AND b.lon_hi OFFSET 0) AS c"
)
_CANDIDATES_AHEAD = "report_candidates"
# Where this transaction opened or changed an incident: (lat, lon) of each.
_CHANGED = "incidents_changed_at"


def read_candidates_ahead(
    conn: Connection, wanted: Sequence[tuple[ReportReceived, Sequence[str]]]
) -> None:
    """A batch of reports' candidates in one statement (PostgreSQL, where each is a
    round trip; SQLite answers them in-process), each taken by load_report_candidates."""
    if conn.dialect.name != "postgresql":
        return
    boxes = {}
    for event, playbook_ids in wanted:
        box = _search_box(conn, event, playbook_ids) if len(playbook_ids) == 1 else None
        if box is not None:
            boxes[event.report_id] = (playbook_ids[0], box)
    if not boxes:
        return
    columns = ("lat_lo", "lat_hi", "lon_lo", "lon_hi")
    rows = conn.execute(
        _CANDIDATES_OF_BOXES,
        {
            "n": list(boxes),
            "playbook": [playbook for playbook, _ in boxes.values()],
            **{c: [box[c] for _, box in boxes.values()] for c in columns},
        },
    ).all()
    views = {v.id: v for v in _views(conn, list({r.id: r for r in rows}.values()))}
    found: dict[int, list[IncidentView]] = {report_id: [] for report_id in boxes}
    for r in rows:
        found[r.n].append(views[r.id])
    read_ahead(conn, _CANDIDATES_AHEAD, found)


def note_changes(
    conn: Connection, decisions: Sequence[Decision], candidates: Sequence[IncidentView]
) -> None:
    """Remember where a report's decisions opened or changed an incident: a later report
    of the batch whose box holds one asks the database again instead of using what was
    read ahead (which did not know of it)."""
    memo = conn.info.get(SCRATCH)
    if memo is None:
        return
    where = {c.id: (c.lat, c.lon) for c in candidates}
    for decision in decisions:
        if isinstance(decision, OpenIncident):
            point = (decision.lat, decision.lon)
        elif isinstance(decision, AttachToIncident | UpgradeIncident):
            point = where.get(decision.incident_id, (None, None))
        else:
            continue
        memo.setdefault(_CHANGED, []).append(point)


def _changed_inside(conn: Connection, box: dict[str, float]) -> bool:
    for lat, lon in scratch(conn).get(_CHANGED, ()):
        if lat is None or lon is None:
            return True  # somewhere unknown: could be anywhere
        if box["lat_lo"] <= lat <= box["lat_hi"] and box["lon_lo"] <= lon <= box["lon_hi"]:
            return True
    return False


def _largest_radius(conn: Connection, playbook_id: str) -> float:
    """The largest correlation radius among the playbook's open site incidents. Read
    once per transaction (a batch of reports) and raised as incidents open in it; an
    incident resolved meanwhile leaves it too large, which only widens the search box
    (matching measures the real distance)."""
    memo = scratch(conn).setdefault(_RADIUS, {})
    if playbook_id not in memo:
        # One index seek: the largest at the end of the playbook's part of the index.
        found = conn.execute(_LARGEST_RADIUS, {"playbook_id": playbook_id}).scalar()
        memo[playbook_id] = found or 0.0
    return float(memo[playbook_id])


_RADIUS = "largest_correlation_radius"


def _views(conn: Connection, rows: Sequence[Any]) -> list[IncidentView]:
    if not rows:
        return []
    ids = [r.id for r in rows]
    counts = {
        r.incident_id: (r.n, as_utc(r.last_at)) for r in conn.execute(_REPORT_COUNTS, {"ids": ids})
    }
    # Reports this transaction linked, written only when it commits (_link_report).
    wanted = set(ids)
    for incident_id, at in scratch(conn).get(_LINKED, {}).values():
        if incident_id in wanted:
            n, last = counts.get(incident_id, (0, None))
            counts[incident_id] = (n + 1, at if last is None or at > last else last)
    warnings: dict[int, dict[str, datetime | None]] = {}
    for w in conn.execute(_ACTIVE_WARNINGS, {"ids": ids}):
        warnings.setdefault(w.incident_id, {})[w.warning_id] = as_utc(w.expires_at)
    views = []
    for row in rows:
        count, last = counts.get(row.id, (0, None))
        views.append(
            IncidentView(
                id=row.id,
                playbook=playbook_from_snapshot(row.snapshot),
                level=row.level,
                scope=row.scope,
                district=row.district,
                lat=row.lat,
                lon=row.lon,
                report_count=count,
                last_report_at=last,
                warnings=warnings.get(row.id, {}),
                thresholds_active=bool(row.thresholds_active),
            )
        )
    return views


# Reports linked in this transaction, whose links are written when it commits:
# report id -> (incident id, when the report came).
_LINKED = "reports_linked"


def _link_report(conn: Connection, report: ReportReceived, incident_id: int) -> None:
    """A report joins its incident. Nothing else in a batch of reports reads the link but
    the incidents' report counts (_views) and whether a report is linked already
    (linked_in_transaction), which see it before it is written with the commit."""
    link = {"report_key": report.report_id, "incident_id": incident_id}
    write_at_commit(conn, _LINK_REPORT, link)
    memo = conn.info.get(SCRATCH)
    if memo is not None:
        memo.setdefault(_LINKED, {})[report.report_id] = (incident_id, report.at)


def linked_in_transaction(conn: Connection, report_id: int) -> bool:
    """Whether this transaction has already linked the report (not yet written)."""
    return report_id in scratch(conn).get(_LINKED, {})


def _link_source(conn: Connection, incident_id: int, event: Event) -> None:
    """Record what drives the incident: the report, the warning, or a threshold."""
    if isinstance(event, ReportReceived):
        _link_report(conn, event, incident_id)
    elif isinstance(event, WarningSignal):
        exists = conn.execute(
            select(incident_warnings.c.state).where(
                incident_warnings.c.incident_id == incident_id,
                incident_warnings.c.warning_id == event.id,
            )
        ).first()
        if exists:
            conn.execute(
                update(incident_warnings)
                .where(
                    incident_warnings.c.incident_id == incident_id,
                    incident_warnings.c.warning_id == event.id,
                )
                .values(expires_at=event.expires, state="active", reason=event.msg_type)
            )
        else:
            conn.execute(
                incident_warnings.insert(),
                dict(
                    incident_id=incident_id,
                    warning_id=event.id,
                    expires_at=event.expires,
                    state="active",
                    reason=event.msg_type,
                ),
            )
    elif isinstance(event, ThresholdCrossed):
        conn.execute(
            update(incidents).where(incidents.c.id == incident_id).values(thresholds_active=1)
        )


def insert_incident(
    conn: Connection,
    *,
    category: str,
    level: str,
    scope: str,
    district: str | None,
    playbook: Playbook,
    lat: float | None,
    lon: float | None,
    now: datetime,
    snapshot: Any = None,
) -> int:
    """The one way an incident row is written (opened by the matcher, or split off by a
    dispatcher). `snapshot` keeps an existing snapshot's exact JSON."""
    radius = playbook.correlation.radius_m if playbook.correlation else None
    memo = scratch(conn).get(_RADIUS)
    if memo is not None and radius and scope == "site" and playbook.id in memo:
        memo[playbook.id] = max(memo[playbook.id], radius)
    return int(
        conn.execute(
            _INCIDENT_INSERT,
            dict(
                category=category,
                status=IncidentStatus.OPEN,
                level=level,
                scope=scope,
                district=district,
                thresholds_active=0,
                playbook_id=playbook.id,
                playbook_version=playbook.version,
                playbook_snapshot=snapshot if snapshot is not None else snapshot_of(playbook),
                correlation_radius_m=radius,
                lat=lat,
                lon=lon,
                unstaffed=0,
                held=0,
                opened_at=now,
                updated_at=now,
            ),
        ).inserted_primary_key[0]
    )


def _open(conn: Connection, decision: OpenIncident, category: str, now: datetime) -> int:
    lat, lon = decision.lat, decision.lon
    if lat is None and decision.district:
        # A district-wide response: crews are chosen by distance to the district centre.
        centre = load_city().districts.get(decision.district)
        if centre:
            lat, lon = centre.lat, centre.lon
    playbook = decision.playbook
    incident_id = insert_incident(
        conn,
        category=category,
        level=decision.level,
        scope=decision.scope,
        district=decision.district,
        playbook=playbook,
        lat=lat,
        lon=lon,
        now=now,
    )
    write_at_commit(
        conn,
        _HISTORY_INSERT,
        dict(
            incident_id=incident_id,
            at=now,
            from_status=None,
            to_status=IncidentStatus.OPEN,
            reason=f"{decision.reason} (level {decision.level})",
        ),
    )
    record_audit(
        conn,
        now,
        SYSTEM,
        "incident.opened",
        "incident",
        incident_id,
        {
            "playbook": playbook.id,
            "version": playbook.version,
            "level": decision.level,
            "scope": decision.scope,
            "district": decision.district,
        },
    )
    return incident_id


def event_category(event: Event) -> str:
    if isinstance(event, ReportReceived):
        return event.category
    if isinstance(event, WarningSignal):
        return event.event
    if isinstance(event, ThresholdCrossed):
        return event.metric
    return "tick"


def apply_decisions(
    conn: Connection, event: Event, decisions: Sequence[Decision], now: datetime
) -> list[int]:
    """Write the decisions; returns the ids of incidents opened or changed."""
    touched: list[int] = []
    for decision in decisions:
        match decision:
            case OpenIncident():
                incident_id = _open(conn, decision, event_category(event), now)
                _link_source(conn, incident_id, event)
                if decision.level != "watch":
                    emit(
                        conn,
                        topics.INCIDENTS,
                        str(incident_id),
                        {"type": "incident.opened", "incident_id": incident_id},
                        now,
                    )
                log.info(
                    "incident opened incident=%s playbook=%s level=%s scope=%s district=%s",
                    incident_id,
                    decision.playbook.id,
                    decision.level,
                    decision.scope,
                    decision.district,
                )
                touched.append(incident_id)
            case UpgradeIncident(incident_id=incident_id, from_level=old, to_level=new):
                conn.execute(
                    update(incidents)
                    .where(incidents.c.id == incident_id)
                    .values(level=new, updated_at=now)
                )
                status = conn.execute(
                    select(incidents.c.status).where(incidents.c.id == incident_id)
                ).scalar_one()
                write_at_commit(
                    conn,
                    _HISTORY_INSERT,
                    dict(
                        incident_id=incident_id,
                        at=now,
                        from_status=status,
                        to_status=status,
                        reason=f"level {old} → {new}: {decision.reason}",
                    ),
                )
                record_audit(
                    conn,
                    now,
                    SYSTEM,
                    "incident.upgraded",
                    "incident",
                    incident_id,
                    {"from": old, "to": new, "reason": decision.reason},
                )
                _link_source(conn, incident_id, event)
                emit(
                    conn,
                    topics.INCIDENTS,
                    str(incident_id),
                    {
                        "type": "incident.upgraded",
                        "incident_id": incident_id,
                        "from": old,
                        "to": new,
                    },
                    now,
                )
                log.info("incident upgraded incident=%s %s->%s", incident_id, old, new)
                touched.append(incident_id)
            case AttachToIncident(incident_id=incident_id):
                _link_source(conn, incident_id, event)
                conn.execute(UPDATE_INCIDENT, {"incident_key": incident_id, "updated_at": now})
                record_audit(
                    conn,
                    now,
                    SYSTEM,
                    "incident.attached",
                    "incident",
                    incident_id,
                    {"reason": decision.reason, "distance_m": decision.distance_m},
                )
                touched.append(incident_id)
            case EndWarnings(incident_id=incident_id, warning_ids=ended):
                conn.execute(
                    update(incident_warnings)
                    .where(
                        incident_warnings.c.incident_id == incident_id,
                        incident_warnings.c.warning_id.in_(ended),
                    )
                    .values(state="ended", reason=decision.reason)
                )
                record_audit(
                    conn,
                    now,
                    SYSTEM,
                    "incident.warnings_ended",
                    "incident",
                    incident_id,
                    {"warnings": list(ended), "reason": decision.reason},
                )
            case ResolveIncident(incident_id=incident_id):
                resolve_incident(conn, incident_id, decision.reason, SYSTEM, now)
                touched.append(incident_id)
            case Ignored(reason=reason):
                if isinstance(event, ReportReceived):
                    record_audit(
                        conn,
                        now,
                        SYSTEM,
                        "report.unmatched",
                        "report",
                        event.report_id,
                        {"reason": reason},
                    )
                log.info("ignored: %s", reason)
    if isinstance(event, ThresholdCrossed) and event.cleared:
        for inc_id in _district_incidents(conn, event.district):
            conn.execute(
                update(incidents).where(incidents.c.id == inc_id).values(thresholds_active=0)
            )
    return touched


def _district_incidents(conn: Connection, district: str) -> list[int]:
    return list(
        conn.execute(
            select(incidents.c.id).where(
                incidents.c.district == district,
                incidents.c.scope == "district",
                incidents.c.status != IncidentStatus.RESOLVED,
            )
        ).scalars()
    )


def resolve_incident(
    conn: Connection,
    incident_id: int,
    reason: str,
    actor: str,
    now: datetime,
    outcome: str | None = None,
) -> None:
    """Resolve, cancelling tasks still open (the warning ended; crews stand down)."""
    old = conn.execute(select(incidents.c.status).where(incidents.c.id == incident_id)).scalar_one()
    if old == IncidentStatus.RESOLVED:
        return
    cancelled = cancel_open_assignments(conn, incident_id, ACTIVE_STATES, now)
    set_incident_status(conn, incident_id, old, IncidentStatus.RESOLVED, reason, now, outcome)
    record_audit(
        conn,
        now,
        actor,
        "incident.resolved",
        "incident",
        incident_id,
        # note: what a dispatcher wrote, as written (the trail shows it; `reason` is
        # the history's sentence around it)
        {"from": old, "reason": reason, "assignments_cancelled": cancelled}
        | ({"note": outcome} if outcome else {}),
    )
    log.info("incident resolved incident=%s reason=%s", incident_id, reason)

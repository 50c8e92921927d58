"""Accepting what comes in: a citizen report (folded with the same caller's repeat,
classified, placed) or an official warning message, persisted and announced through
the outbox in one transaction. Every entrance (Open311, SMS, operators, feeds,
replay) comes through here."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, bindparam, insert, select

from pingan.core import topics
from pingan.core.events import WarningSignal
from pingan.intake.classify import normalise_text
from pingan.intake.location import Located, locate
from pingan.intake.reports import ReportDraft
from pingan.intake.warnings import signal_to_event
from pingan.store import Store, as_utc, emit, record_audit
from pingan.store.schema import (
    reports,
    warning_messages,
)

DUPLICATE_WINDOW = timedelta(minutes=2)
# Built once (see pingan/store/incidents.py): every group of a storm's reports runs both.
_RECENT_FROM_CALLERS = (
    select(
        reports.c.id,
        reports.c.caller_hash,
        reports.c.description,
        reports.c.service_code,
        reports.c.received_at,
    )
    .where(
        reports.c.caller_hash.in_(bindparam("callers", expanding=True)),
        reports.c.received_at >= bindparam("since"),
    )
    .order_by(reports.c.id)
)
# Ids come back in the order the rows were given (SQLAlchemy sorts a multi-row insert's
# RETURNING by parameter order).
_REPORT_INSERT = insert(reports).returning(reports.c.id, sort_by_parameter_order=True)


@dataclass(frozen=True)
class Accepted:
    report_id: int
    duplicate: bool = False
    review_reason: str | None = None


def caller_hash(phone: str | None) -> str | None:
    if not phone:
        return None
    digits = "".join(ch for ch in phone if ch.isdigit())[-11:]
    return hashlib.sha256(f"pingan-caller:{digits}".encode()).hexdigest()[:32]


def accept_report(
    store: Store,
    draft: ReportDraft,
    source: str,
    actor: str,
    now: datetime,
    classification: dict[str, object] | None = None,
    review_reason: str | None = None,
) -> Accepted:
    """Persist a validated report and announce it, in one transaction: once this
    returns, the report survives any crash and will be processed. The same caller
    sending the same text again within two minutes gets the first report's id. A report
    that cannot be placed (or was unsure of its category) waits for review."""
    placed = place(draft, review_reason)  # outside the write lock: no database needed
    arrival = Arrival(draft, placed, source, actor, now, classification)
    with store.transaction() as conn:
        [accepted] = accept_reports_in(conn, [arrival])
        return accepted


def accept_reports(
    store: Store, drafts: list[ReportDraft], source: str, actor: str, now: datetime
) -> list[Accepted]:
    """Several reports in one transaction (one write lock, one commit): a platform's
    batch, or a load test that must outpace the worker."""
    arrivals = [Arrival(draft, place(draft), source, actor, now) for draft in drafts]
    with store.transaction() as conn:
        return accept_reports_in(conn, arrivals)


@dataclass(frozen=True)
class Placed:
    """Where a report is, how we know, and whether that leaves it for review."""

    located: Located
    by: str | None
    review_reason: str | None


def place(draft: ReportDraft, review_reason: str | None = None) -> Placed:
    located = locate(draft.lat, draft.lon, f"{draft.address or ''} {draft.description}")
    by = (
        "coordinates"
        if draft.lat is not None
        else "gazetteer"
        if located.lat is not None
        else "district"
        if located.district
        else None
    )
    if by is None and review_reason is None:
        review_reason = "location unknown: no coordinates and no known road or landmark"
    return Placed(located, by, review_reason)


@dataclass(frozen=True)
class Arrival:
    """A report as it came in, placed, waiting to be accepted."""

    draft: ReportDraft
    placed: Placed
    source: str
    actor: str
    now: datetime
    classification: dict[str, object] | None = None


def accept_reports_in(conn: Connection, arrivals: Sequence[Arrival]) -> list[Accepted]:
    """Accept reports inside the caller's transaction, in order: a statement for the
    callers' recent reports and one inserting every new report, however many there are
    (a storm's requests gather into one commit, GroupCommit). A report repeating its
    caller's report of the last two minutes, earlier in the same batch or before, is
    folded into that one."""
    callers = [caller_hash(a.draft.contact.get("phone")) for a in arrivals]
    earlier: dict[str, list[tuple[int | None, int, str, str, datetime]]] = {}
    wanted = sorted({c for c in callers if c})
    if wanted:
        since = min(a.now for a in arrivals) - DUPLICATE_WINDOW
        for row in conn.execute(_RECENT_FROM_CALLERS, {"callers": wanted, "since": since}):
            earlier.setdefault(row.caller_hash, []).append(
                (row.id, -1, row.service_code, normalise_text(row.description), row.received_at)
            )
    folded_into: dict[int, tuple[int | None, int]] = {}  # arrival -> (report id, arrival)
    new: list[int] = []
    for n, (arrival, caller) in enumerate(zip(arrivals, callers, strict=True)):
        if caller:
            text = normalise_text(arrival.draft.description)
            since = arrival.now - DUPLICATE_WINDOW
            same = next(
                (
                    (report_id, first)
                    for report_id, first, code, said, at in earlier.get(caller, [])
                    if code == arrival.draft.service_code
                    and said == text
                    and (as_utc(at) or arrival.now) >= since
                ),
                None,
            )
            if same is not None:
                folded_into[n] = same
                continue
            earlier.setdefault(caller, []).append(
                (None, n, arrival.draft.service_code, text, arrival.now)
            )
        new.append(n)
    rows = [_report_row(arrivals[n], callers[n]) for n in new]
    inserted = conn.execute(_REPORT_INSERT, rows).scalars().all() if rows else []
    report_ids = dict(zip(new, (int(i) for i in inserted), strict=True))
    answers = []
    for n, arrival in enumerate(arrivals):
        if n in folded_into:
            report_id, first = folded_into[n]
            report_id = report_id if report_id is not None else report_ids[first]
            record_audit(
                conn,
                arrival.now,
                arrival.actor,
                "report.duplicate_folded",
                "report",
                report_id,
                {"source": arrival.source},
            )
            answers.append(Accepted(report_id, duplicate=True))
        else:
            answers.append(_announce(conn, arrival, report_ids[n], callers[n] is not None))
    return answers


def _report_row(arrival: Arrival, caller: str | None) -> dict[str, object]:
    draft, placed = arrival.draft, arrival.placed
    return dict(
        received_at=arrival.now,
        source=arrival.source,
        service_code=draft.service_code,
        lat=placed.located.lat,
        lon=placed.located.lon,
        address=draft.address,
        description=draft.description,
        media_url=draft.media_url,
        contact=draft.contact,
        district=placed.located.district,
        segment=placed.located.segment,
        located_by=placed.by,
        attributes=draft.attributes,
        classification=arrival.classification,
        review_reason=placed.review_reason,
        caller_hash=caller,
    )


def _announce(conn: Connection, arrival: Arrival, report_id: int, has_caller: bool) -> Accepted:
    located, review_reason, now = arrival.placed.located, arrival.placed.review_reason, arrival.now
    record_audit(
        conn,
        now,
        arrival.actor,
        "report.accepted",
        "report",
        report_id,
        {
            "service_code": arrival.draft.service_code,
            "source": arrival.source,
            "district": located.district,
            "review": review_reason,
        },
    )
    if review_reason is None:
        emit(
            conn,
            topics.REPORTS,
            located.district or "unknown",
            {"type": "report.accepted", "report_id": report_id},
            now,
        )
    if has_caller and arrival.source != "sms":  # an SMS gets its answer in the webhook reply
        emit(
            conn,
            topics.NOTIFICATIONS,
            located.district or "unknown",
            {"type": "citizen.received", "report_id": report_id},
            now,
        )
    return Accepted(report_id, review_reason=review_reason)


def accept_warning(
    store: Store, signal: WarningSignal, headline: str, source: str, now: datetime
) -> bool:
    """Persist and announce a warning message. A message already received (same id and
    msg_type, e.g. re-polled) is not a new event: returns False and writes nothing."""
    with store.transaction() as conn:
        seen = conn.execute(
            select(warning_messages.c.id).where(
                warning_messages.c.warning_id == signal.id,
                warning_messages.c.msg_type == signal.msg_type,
            )
        ).first()
        if seen:
            return False
        message_id = conn.execute(
            warning_messages.insert(),
            dict(
                warning_id=signal.id,
                msg_type=signal.msg_type,
                event=signal.event,
                level=signal.level,
                districts=list(signal.districts),
                expires_at=signal.expires,
                references=list(signal.references),
                headline=headline,
                source=source,
                received_at=now,
            ),
        ).inserted_primary_key[0]
        record_audit(
            conn,
            now,
            source,
            f"warning.{signal.msg_type.lower()}",
            "warning",
            signal.id,
            {
                "event": signal.event,
                "level": signal.level,
                "districts": list(signal.districts),
                "message": message_id,
            },
        )
        emit(
            conn,
            topics.WEATHER,
            signal.id,
            {"type": "warning.received", "warning": signal_to_event(signal, headline)},
            now,
        )
    return True


@dataclass
class _Waiting:
    draft: ReportDraft
    source: str
    actor: str
    now: datetime
    answer: asyncio.Future[Accepted]


class GroupCommit:
    """Reports accepted by concurrent requests share transactions. SQLite has one writer:
    a request that waited for the write lock once per report left intake at the pace of
    lock hand-overs. Here, while one commit is under way, the requests that arrive gather
    and go in together with the next. Each request is answered only once its own report
    is committed, so nothing is acknowledged that a crash could lose."""

    def __init__(self, store: Store, most: int = 200) -> None:
        self._store, self._most = store, most
        self._waiting: list[_Waiting] = []
        self._committer: asyncio.Task[None] | None = None

    async def accept(self, draft: ReportDraft, source: str, actor: str, now: datetime) -> Accepted:
        answer: asyncio.Future[Accepted] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiting(draft, source, actor, now, answer))
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_while_waiting())
        return await answer

    async def _commit_while_waiting(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[: self._most], self._waiting[self._most :]
            try:
                answers = await asyncio.to_thread(self._commit, batch)
            except Exception:
                # Something in the batch failed: each report on its own, so every request
                # gets its own answer or its own error.
                for one in batch:
                    try:
                        [answer] = await asyncio.to_thread(self._commit, [one])
                    except Exception as exc:  # reported to that request's handler
                        one.answer.set_exception(exc)
                    else:
                        one.answer.set_result(answer)
                continue
            for one, answer in zip(batch, answers, strict=True):
                if not one.answer.done():
                    one.answer.set_result(answer)

    def _commit(self, batch: list[_Waiting]) -> list[Accepted]:
        arrivals = [  # placed outside the write lock
            Arrival(one.draft, place(one.draft), one.source, one.actor, one.now) for one in batch
        ]
        with self._store.transaction() as conn:
            return accept_reports_in(conn, arrivals)

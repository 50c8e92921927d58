"""Accepting what comes in: a citizen report (folded with the same caller's repeat,
classified, placed) or an official warning message, persisted and announced through
the outbox in one transaction. Every entrance (Open311, SMS, operators, feeds,
replay) comes through here."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, bindparam, insert, select

from pingan.core import topics
from pingan.core.events import WarningSignal
from pingan.intake.classify import normalise_text
from pingan.intake.location import Located, locate
from pingan.intake.reports import ReportDraft
from pingan.intake.warnings import signal_to_event
from pingan.store import Store, emit, record_audit
from pingan.store.schema import (
    reports,
    warning_messages,
)

DUPLICATE_WINDOW = timedelta(minutes=2)
# Built once (see pingan/store/incidents.py): every report of a storm runs both.
_RECENT_FROM_CALLER = (
    select(reports.c.id, reports.c.description, reports.c.service_code)
    .where(
        reports.c.caller_hash == bindparam("caller"), reports.c.received_at >= bindparam("since")
    )
    .order_by(reports.c.id)
)
_REPORT_INSERT = insert(reports)


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
    with store.transaction() as conn:
        return accept_report_in(conn, draft, placed, source, actor, now, classification)


def accept_reports(
    store: Store, drafts: list[ReportDraft], source: str, actor: str, now: datetime
) -> list[Accepted]:
    """Several reports in one transaction (one write lock, one commit): a platform's
    batch, or a load test that must outpace the worker."""
    placed = [place(draft) for draft in drafts]
    with store.transaction() as conn:
        return [
            accept_report_in(conn, draft, where, source, actor, now)
            for draft, where in zip(drafts, placed, strict=True)
        ]


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


def accept_report_in(
    conn: Connection,
    draft: ReportDraft,
    placed: Placed,
    source: str,
    actor: str,
    now: datetime,
    classification: dict[str, object] | None = None,
) -> Accepted:
    """accept_report inside the caller's transaction."""
    located, by, review_reason = placed.located, placed.by, placed.review_reason
    caller = caller_hash(draft.contact.get("phone"))
    text = normalise_text(draft.description)
    if caller:
        recent = conn.execute(
            _RECENT_FROM_CALLER, {"caller": caller, "since": now - DUPLICATE_WINDOW}
        ).all()
        for row in recent:
            if row.service_code == draft.service_code and normalise_text(row.description) == text:
                record_audit(
                    conn,
                    now,
                    actor,
                    "report.duplicate_folded",
                    "report",
                    row.id,
                    {"source": source},
                )
                return Accepted(row.id, duplicate=True)
    report_id = conn.execute(
        _REPORT_INSERT,
        dict(
            received_at=now,
            source=source,
            service_code=draft.service_code,
            lat=located.lat,
            lon=located.lon,
            address=draft.address,
            description=draft.description,
            media_url=draft.media_url,
            contact=draft.contact,
            district=located.district,
            segment=located.segment,
            located_by=by,
            attributes=draft.attributes,
            classification=classification,
            review_reason=review_reason,
            caller_hash=caller,
        ),
    ).inserted_primary_key[0]
    record_audit(
        conn,
        now,
        actor,
        "report.accepted",
        "report",
        report_id,
        {
            "service_code": draft.service_code,
            "source": source,
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
    if caller and source != "sms":  # an SMS gets its answer in the webhook reply
        emit(
            conn,
            topics.NOTIFICATIONS,
            located.district or "unknown",
            {"type": "citizen.received", "report_id": report_id},
            now,
        )

    return Accepted(int(report_id), review_reason=review_reason)


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
        placed = [place(one.draft) for one in batch]  # outside the write lock
        with self._store.transaction() as conn:
            return [
                accept_report_in(conn, one.draft, where, one.source, one.actor, one.now)
                for one, where in zip(batch, placed, strict=True)
            ]

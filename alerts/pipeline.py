"""The one notification pipeline every message goes through, crew or citizen, one
message or a warning's chunk, built from small stages as Alertmanager builds its
notifier:

    render (callers: streams/handlers.py, alerts/fanout.py)
      → queue: dedup against the ledger (one `sends` row per key and channel)
      → claim what is due → pace (alerts/pacing.py) → send
      → retry with backoff that honours Retry-After, or fail over (alerts/retry.py)
      → record (the ledger row, in one transaction per pass)

A message is done only when a provider took it ('sent'), refused it for good
('failed': invalid number, opted out), or a dispatcher gave up on it (`give_up`).
Until then its row stays 'pending' with the time it is due again, so it is retried
across restarts by whichever process sends (`Sender.run`, one per deployment, under a
lease: the pace is per sender and only one process can keep it). A row whose attempt
began but whose outcome was never written (a crash) is looked up at the provider
before it is sent again, where the channel can (Twilio).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, bindparam, or_, select, update

from alerts.channels.base import (
    Channel,
    Message,
    Reconciling,
    RetryableError,
    SendError,
    WarningCard,
)
from alerts.ledger import NOT_REACHED, SendOutcome, release_held_receipts
from alerts.pacing import PacedChannel
from alerts.retry import (
    DEFAULT_POLICY,
    POLICIES,
    GiveUpChannel,
    RetryPolicy,
    message_kind,
    next_channel,
    next_step,
)
from pingan.clock import utcnow
from pingan.privacy import mask_phone
from pingan.store import LEASE_RENEW_S, LEASE_S, Store, as_utc, insert_or_ignore, take_lease
from pingan.store.schema import sends

log = logging.getLogger("pingan.alerts.pipeline")

CONCURRENCY = 500  # sends in flight at once (each still waits for its sender's pace)
PASS_MOST = 1000  # rows one pass claims, at most
AHEAD_S = 2.0  # a paced channel is given this many seconds of its pace per pass
# A claimed row is due again after this if its sender dies mid-send (the next sender
# asks the provider first). A live sender never holds one this long: a request is
# abandoned after 30 s (twilio_sms.DEADLINE_FACTOR × its timeout) and a pass claims only
# AHEAD_S of its pace; five minutes left a killed worker's crew SMS late for 5-minute
# escalation steps.
LEASE = timedelta(seconds=60)
SUPERVISOR = "supervisor"  # the last step of a crew's chain: not a provider


@dataclass(frozen=True)
class Outgoing:
    """A rendered message and the channel (a chain step: sms, voice, wechat, ...) it
    goes out on."""

    message: Message
    channel: str
    warning_id: int | None = None
    subscriber_id: int | None = None


# ---- queue: dedup against the ledger -------------------------------------------------


def queue(conn: Connection, items: Sequence[Outgoing], now: datetime) -> None:
    """Write a pending row, due now, for each message not in the ledger yet on its
    channel; a row already there (pending, sent or failed) is left as it is."""
    rows = [
        {
            "dedup_key": o.message.idempotency_key,
            "channel": o.channel,
            "recipient": o.message.recipient,
            "body": o.message.body,
            "status": "pending",
            "created_at": now,
            "updated_at": now,
            "next_attempt_at": now,
            "warning_id": o.warning_id,
            "subscriber_id": o.subscriber_id,
        }
        for o in items
    ]
    for start in range(0, len(rows), 500):
        conn.execute(
            insert_or_ignore(conn, sends, "dedup_key", "channel"), rows[start : start + 500]
        )


def of_key(key: str) -> ColumnElement[bool]:
    """Select one message's rows (on every channel of its chain)."""
    return sends.c.dedup_key == key


def of_chunk(warning_id: int, from_id: int, to_id: int) -> ColumnElement[bool]:
    """Select one warning chunk's rows."""
    return and_(sends.c.warning_id == warning_id, sends.c.subscriber_id.between(from_id, to_id))


def give_up(conn: Connection, send_id: int, who: str, now: datetime) -> bool:
    """A dispatcher ends a pending message: it is 'failed', never tried again.
    Returns False when the row is not pending (sent, failed, or no such row)."""
    done = conn.execute(
        update(sends)
        .where(sends.c.id == send_id, sends.c.status == "pending")
        .values(
            status="failed",
            error=f"given up by {who}",
            next_attempt_at=None,
            attempt_started_at=None,
            updated_at=now,
        )
    ).rowcount
    return bool(done)


# ---- claim ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Due:
    id: int
    key: str
    channel: str
    recipient: str
    body: str
    attempts: int
    created_at: datetime
    unsure: bool  # an attempt began and its outcome was never written
    warning_id: int | None
    subscriber_id: int | None


_DUE_COLUMNS = (
    sends.c.id,
    sends.c.dedup_key,
    sends.c.channel,
    sends.c.recipient,
    sends.c.body,
    sends.c.attempts,
    sends.c.created_at,
    sends.c.attempt_started_at,
    sends.c.warning_id,
    sends.c.subscriber_id,
)


def _due(row: Any) -> Due:
    return Due(
        row.id,
        row.dedup_key,
        row.channel,
        row.recipient,
        row.body,
        row.attempts,
        as_utc(row.created_at),  # type: ignore[arg-type]
        row.attempt_started_at is not None,
        row.warning_id,
        row.subscriber_id,
    )


def claim(
    conn: Connection,
    now: datetime,
    budget: Mapping[tuple[str, bool], int],
    skip: Collection[int] = (),
    only: ColumnElement[bool] | None = None,
) -> list[Due]:
    """Pending rows due by `now`, oldest due first, at most `budget[(channel, person)]`
    of one person's messages (crews, staff, callers: person=True) and of a warning's
    on each channel, so a long warning never holds a crew's message back; each marked
    as being attempted (and due again after LEASE, should we die before recording).
    A row is taken only if it is still due when marked: two senders claiming at once
    (the one that lost the sender lease has not noticed yet) never both get it."""
    found: list[Due] = []
    for (channel, person), left in budget.items():
        if left > 0:
            where = and_(
                _due_by(now),
                sends.c.channel == channel,
                sends.c.warning_id.is_(None) if person else sends.c.warning_id.is_not(None),
            )
            if only is not None:
                where = and_(where, only)
            if skip:
                where = and_(where, sends.c.id.not_in(list(skip)))
            rows = conn.execute(
                select(*_DUE_COLUMNS)
                .where(where)
                .order_by(sends.c.next_attempt_at, sends.c.id)
                .limit(left)
            ).all()
            found.extend(_due(r) for r in rows)
    if found:
        ids = [d.id for d in found]
        taken: set[int] = set()
        for start in range(0, len(ids), 900):
            # Conditional: on PostgreSQL a concurrent claimer's UPDATE waits for ours,
            # then finds these rows no longer due and skips them (SQLite's writers take
            # turns anyway).
            taken.update(
                conn.execute(
                    update(sends)
                    .where(sends.c.id.in_(ids[start : start + 900]), _due_by(now))
                    .values(attempt_started_at=now, next_attempt_at=now + LEASE)
                    .returning(sends.c.id)
                ).scalars()
            )
        found = [d for d in found if d.id in taken]
    return found


def _due_by(now: datetime) -> ColumnElement[bool]:
    return and_(
        sends.c.status == "pending",
        or_(sends.c.next_attempt_at <= now, sends.c.next_attempt_at.is_(None)),
    )


# ---- send -----------------------------------------------------------------------------


@dataclass
class Attempted:
    due: Due
    provider_id: str | None = None
    error: SendError | None = None
    at: datetime | None = None  # when the answer came
    reconciled: bool = False  # the provider had taken it before (no new send)


async def _attempt(
    due: Due, channel: Channel, card: WarningCard | None, clock: Callable[[], datetime]
) -> Attempted:
    message = Message(due.key, due.recipient, due.body, card)
    if due.unsure and isinstance(channel, Reconciling):
        # An earlier attempt went out unanswered (a crash, a timeout): ask first. If the
        # provider cannot say, wait and ask again rather than risk a second copy.
        try:
            found = await channel.find_sent(message, due.created_at)
        except SendError as exc:
            error = RetryableError(f"not sent again until confirmed: {exc}", unsure=True)
            return Attempted(due, error=error, at=clock())
        if found:
            log.info("send reconciled key=%s provider_id=%s (taken before)", due.key, found)
            return Attempted(due, provider_id=found, at=clock(), reconciled=True)
    try:
        provider_id = await channel.send(message)
    except SendError as exc:
        return Attempted(due, error=exc, at=clock())
    except Exception as exc:  # a bug in a channel must not lose the message
        log.exception("channel %s raised on key=%s", due.channel, due.key)
        error = RetryableError(f"{exc.__class__.__name__}: {exc}")
        return Attempted(due, error=error, at=clock())
    return Attempted(due, provider_id=provider_id, at=clock())


# ---- record (retry and fail over decided by alerts/retry.py) --------------------------


@dataclass
class PassResult:
    sent: int = 0
    failed: int = 0
    retry: int = 0
    failed_over: int = 0  # messages handed to the next channel of their chain
    errors: list[str] = field(default_factory=list)
    by_key: dict[str, str] = field(default_factory=dict)  # key -> sent | failed | retry

    def add(self, other: PassResult) -> None:
        self.sent += other.sent
        self.failed += other.failed
        self.retry += other.retry
        self.failed_over += other.failed_over
        self.errors += other.errors
        self.by_key.update(other.by_key)


_RECORD = (
    update(sends)
    .where(sends.c.id == bindparam("row_id"))
    .values(
        status=bindparam("st"),
        provider_id=bindparam("pid"),
        error=bindparam("err"),
        next_attempt_at=bindparam("due"),
        attempt_started_at=bindparam("unsure_since"),
        attempts=sends.c.attempts + 1,
        updated_at=bindparam("at"),
    )
)


def record(
    conn: Connection,
    results: Iterable[Attempted],
    available: Collection[str],
    now: datetime,
    policies: Mapping[str, RetryPolicy] = POLICIES,
) -> PassResult:
    """Write each attempt's outcome and carry out what the core decides: sent, failed
    (and on to the next channel, due from `now`, the pass's time), or pending again
    until a later time (and, past the kind's escalation time, also on to the next
    channel)."""
    out = PassResult()
    updates: list[dict[str, Any]] = []
    onward: list[tuple[Due, bool]] = []  # (row, refused for good)
    for r in results:
        due, at = r.due, r.at or utcnow()
        row = {
            "row_id": due.id,
            "pid": r.provider_id,
            "err": None,
            "due": None,
            "at": at,
            "unsure_since": None,
        }
        if r.error is None:
            out.sent += 1
            out.by_key[due.key] = "already_sent" if r.reconciled else "sent"
            updates.append(row | {"st": "sent"})
            continue
        kind = message_kind(due.key)
        step = next_step(
            due.attempts + 1, r.error, at, due.created_at, policies.get(kind, DEFAULT_POLICY)
        )
        error = str(r.error)[:500]
        if isinstance(step, GiveUpChannel):
            out.failed += 1
            out.by_key[due.key] = "failed"
            updates.append(row | {"st": "failed", "err": error})
            log.error("send failed key=%s to=%s: %s", due.key, mask_phone(due.recipient), error)
            onward.append((due, True))
            continue
        out.retry += 1
        out.by_key[due.key] = "retry"
        out.errors.append(error)
        unsure = isinstance(r.error, RetryableError) and r.error.unsure
        updates.append(
            row
            | {
                "st": "pending",
                "err": error,
                "due": step.at,
                "unsure_since": at if unsure else None,
            }
        )
        log.warning(
            "send retry key=%s to=%s attempt=%d next_in_s=%.1f: %s",
            due.key,
            mask_phone(due.recipient),
            due.attempts + 1,
            (step.at - at).total_seconds(),
            error,
        )
        if step.escalate:
            onward.append((due, False))
    if updates:
        conn.execute(_RECORD, updates)
        release_held_receipts(conn, [u["pid"] for u in updates if u["pid"]], updates[0]["at"])
    for due, refused in onward:
        if _fail_over(conn, due, refused, available, now):
            out.failed_over += 1
    return out


def _fail_over(
    conn: Connection, due: Due, refused: bool, available: Collection[str], now: datetime
) -> bool:
    """Hand the message to the next channel of its chain, once (the ledger's key and
    channel make a second hand-over a no-op). True if it went somewhere new."""
    kind = message_kind(due.key)
    if kind == "warning":
        from alerts.fanout import reroute

        routed = reroute(conn, due, available)
        if routed is None:
            return False
        queue(conn, [routed], now)
        return True
    target = next_channel(kind, due.channel, {*available, SUPERVISOR})
    if target is None:
        return False
    if target == SUPERVISOR:
        return _tell_supervisor(conn, due, refused, now)
    queue(conn, [Outgoing(Message(due.key, due.recipient, due.body), target)], now)
    return True


def _tell_supervisor(conn: Connection, due: Due, refused: bool, now: datetime) -> bool:
    """The crew could not be reached: their unit supervisor hears it (in their staff
    digest), and the ledger records that they were told, so it happens once."""
    from alerts.render import crew_unreachable_text
    from pingan.dispatch.timers import alert_staff
    from pingan.store.schema import assignments, crews

    exists = conn.execute(
        select(sends.c.id).where(sends.c.dedup_key == due.key, sends.c.channel == SUPERVISOR)
    ).first()
    if exists:
        return False
    assignment_id = int(due.key.split(":")[1])
    row = conn.execute(
        select(assignments.c.incident_id, crews.c.name, crews.c.unit)
        .join(crews, crews.c.id == assignments.c.crew_id)
        .where(assignments.c.id == assignment_id)
    ).first()
    if row is None:
        return False
    text = crew_unreachable_text(assignment_id, row.name, refused)
    who = alert_staff(conn, "supervisor", row.unit or "", text, row.incident_id, now)
    if who is None:
        return False
    conn.execute(
        sends.insert().values(
            dedup_key=due.key,
            channel=SUPERVISOR,
            recipient=who[:64],
            body=text,
            status="sent",
            created_at=now,
            updated_at=now,
        )
    )
    log.warning("crew unreachable key=%s refused=%s: supervisor told", due.key, refused)
    return True


# ---- the sender: claim → pace → send → record, pass after pass -------------------------


def _cards(conn: Connection, warning_ids: Iterable[int]) -> dict[int, WarningCard]:
    from alerts.citizen_warnings import card_of
    from pingan.store.schema import citizen_warnings

    wanted = sorted(set(warning_ids))
    if not wanted:
        return {}
    rows = conn.execute(select(citizen_warnings).where(citizen_warnings.c.id.in_(wanted))).all()
    return {r.id: card_of(r) for r in rows}


class Sender:
    """Sends what the ledger holds as due, through the configured channels (already
    paced: alerts/channels/factory.py). `run` is the worker's loop; `run_pass` is one
    pass, which tests and the simulation call directly."""

    def __init__(
        self,
        store: Store,
        channels: Mapping[str, Channel],
        policies: Mapping[str, RetryPolicy] = POLICIES,
    ) -> None:
        self.store, self.channels, self.policies = store, dict(channels), policies
        # rows a pass holds: id -> (channel, one person's message rather than a warning's)
        self.in_flight: dict[int, tuple[str, bool]] = {}
        self._claiming = asyncio.Lock()  # one claim at a time: passes never share a row
        self._wake: asyncio.Event | None = None

    def budget(self) -> dict[tuple[str, bool], int]:
        """How many rows of each channel, people's messages and warnings' apart, one pass
        may take: for a paced channel about AHEAD_S seconds of its pace less what is in
        flight (so a crew message queued now waits behind seconds of a warning in the
        pace's queue, not behind all of it), for an unpaced one PASS_MOST."""
        busy = Counter(self.in_flight.values())
        out = {}
        for name, channel in self.channels.items():
            if isinstance(channel, PacedChannel):
                most = int(channel.pace.rate_per_s * AHEAD_S) + channel.pace.burst
            else:
                most = PASS_MOST
            for person in (True, False):
                out[(name, person)] = max(min(most, PASS_MOST) - busy[(name, person)], 0)
        return out

    async def run_pass(
        self, now: datetime | None = None, only: ColumnElement[bool] | None = None
    ) -> PassResult:
        """Claim what is due (what `only` selects, when given), send it, record."""
        now = now or utcnow()
        budget = {c: n for c, n in self.budget().items() if n > 0}
        if not budget:
            return PassResult()

        def take() -> tuple[list[Due], dict[int, WarningCard]]:
            with self.store.transaction() as conn:
                due = claim(conn, now, budget, self.in_flight, only)
                return due, _cards(conn, (d.warning_id for d in due if d.warning_id))

        async with self._claiming:
            due, cards = await asyncio.to_thread(take)
            self.in_flight.update((d.id, (d.channel, d.warning_id is None)) for d in due)
        if not due:
            return PassResult()
        started = time.monotonic()

        def clock() -> datetime:  # decisions at the time the answer came
            return now + timedelta(seconds=time.monotonic() - started)

        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(d: Due) -> Attempted:
            async with gate:
                card = cards.get(d.warning_id) if d.warning_id else None
                return await _attempt(d, self.channels[d.channel], card, clock)

        try:
            results = await asyncio.gather(*(one(d) for d in due))

            def write() -> PassResult:
                with self.store.transaction() as conn:
                    return record(conn, results, self.channels, now, self.policies)

            return await asyncio.to_thread(write)
        finally:
            for d in due:
                self.in_flight.pop(d.id, None)

    async def drain(
        self, now: datetime | None = None, only: ColumnElement[bool] | None = None
    ) -> PassResult:
        """Passes until nothing (`only` selects) is due at `now`: each message attempted
        once, and what failed over attempted on its next channel."""
        total = PassResult()
        while True:
            done = await self.run_pass(now, only)
            total.add(done)
            if not (done.sent or done.failed or done.retry):
                return total

    def wake(self) -> None:
        """Something was queued: the worker's loop makes a pass now."""
        if self._wake is not None:
            self._wake.set()

    async def queued(self, only: ColumnElement[bool], now: datetime) -> PassResult:
        """Something was queued: in the worker, wake the loop (the caller does not wait
        for the provider); elsewhere (tests, the simulation), send it now."""
        if self._wake is not None:
            self.wake()
            return PassResult()
        return await self.drain(now, only)

    async def run(self, stop: asyncio.Event, interval_s: float = 1.0) -> None:
        """The worker's loop: while this process holds the 'sender' lease, a pass at
        least every interval and whenever something is queued. Passes overlap (a
        hanging provider holds only its own pass), never on the same row."""
        self._wake = asyncio.Event()
        passes: set[asyncio.Task[PassResult]] = set()
        held, last_lease = False, 0.0
        while not stop.is_set():
            try:
                if time.monotonic() - last_lease >= LEASE_RENEW_S:
                    last_lease = time.monotonic()
                    now_held = await asyncio.to_thread(
                        take_lease, self.store, "sender", LEASE_S, utcnow()
                    )
                    if now_held != held:
                        log.info("sender %s", "sending" if now_held else "standing by")
                    held = now_held
                if held and len(passes) < 8:
                    task = asyncio.create_task(self.run_pass())
                    passes.add(task)
                    task.add_done_callback(passes.discard)
                    task.add_done_callback(_log_failure)
            except Exception as exc:  # keep sending; the rows stay pending
                log.error("sender error (will retry): %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=interval_s)
            self._wake.clear()
        for task in passes:
            task.cancel()
        await asyncio.gather(*passes, return_exceptions=True)


def _log_failure(task: asyncio.Task[PassResult]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("send pass failed (its rows are due again later): %s", task.exception())


async def send_once(store: Store, channel: Channel, message: Message, now: datetime) -> SendOutcome:
    """One message on one channel, through the pipeline, now: sent, already_sent (a
    row no longer pending, or one the provider turned out to have taken), failed, or
    retry (still pending, due again later)."""
    key = message.idempotency_key
    with store.transaction() as conn:
        queue(conn, [Outgoing(message, channel.name)], now)
    done = await Sender(store, {channel.name: channel}).run_pass(
        now, and_(of_key(key), sends.c.channel == channel.name)
    )
    with store.read() as conn:
        row = conn.execute(
            select(sends.c.status, sends.c.provider_id, sends.c.error).where(
                of_key(key), sends.c.channel == channel.name
            )
        ).one()
    status = done.by_key.get(key)
    if status is None:
        status = "failed" if row.status in NOT_REACHED else "already_sent"
    if status == "retry":
        return SendOutcome("retry", error=row.error)
    return SendOutcome(status, row.provider_id, row.error)

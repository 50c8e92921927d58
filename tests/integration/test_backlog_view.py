"""The backlog the console's health view shows: events not yet published, events not
yet processed (the worker's lag), reports not yet on an incident, messages no provider
has taken yet; each with its age."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from alerts.channels.base import Message
from alerts.pipeline import Outgoing, queue
from pingan.intake.accept import accept_report
from pingan.queries import backlog
from pingan.store import Store, claim_event, emit
from pingan.store.schema import outbox, reports, sends
from tests.conftest import NOW
from tests.integration.test_handlers import draft


def test_backlog_counts_what_waits_and_since_when(store: Store) -> None:
    with store.read() as conn:
        assert backlog(conn, NOW) == {
            "outbox_unpublished": {"count": 0, "oldest_age_s": 0.0},
            "events_unprocessed": {"count": 0, "oldest_age_s": 0.0},
            "reports_unlinked": {"count": 0, "oldest_age_s": 0.0},
            "messages_pending": {"count": 0, "oldest_age_s": 0.0, "retrying": 0},
        }
    first = accept_report(store, draft(), "open311", "t", NOW).report_id
    accept_report(store, draft(33.60, 114.06, phone="+8613900000001"), "open311", "t", NOW)
    later = NOW + timedelta(seconds=30)
    with store.transaction() as conn:
        done = emit(conn, "t", "k", {"type": "t"}, later)
        emit(conn, "t", "k", {"type": "t"}, later)
    # (Outbox rows are written when their transaction commits, so the relay's part
    # comes after.)
    with store.transaction() as conn:
        # The relay published all but the newest; the worker processed one of those.
        conn.execute(update(outbox).where(outbox.c.created_at == NOW).values(published_at=NOW))
        conn.execute(update(outbox).where(outbox.c.event_id == done).values(published_at=later))
        claim_event(conn, "x", done, later)
        # Two crew messages queued; the provider failed the first once, took the third.
        queue(
            conn,
            [Outgoing(Message(f"assignment:{n}", "+8613800000000", "任务"), "sms") for n in (1, 2)],
            NOW,
        )
        queue(conn, [Outgoing(Message("assignment:3", "+8613800000000", "任务"), "sms")], later)
        conn.execute(update(sends).where(sends.c.dedup_key == "assignment:1").values(attempts=1))
        conn.execute(update(sends).where(sends.c.dedup_key == "assignment:3").values(status="sent"))
        conn.execute(update(reports).where(reports.c.id == first).values(incident_id=None))
    with store.read() as conn:
        seen = backlog(conn, NOW + timedelta(seconds=90))
    assert seen["outbox_unpublished"] == {"count": 1, "oldest_age_s": 60.0}
    # Two reports' events (+ their callers' acknowledgements), published, not processed.
    assert seen["events_unprocessed"] == {"count": 4, "oldest_age_s": 90.0}
    assert seen["reports_unlinked"] == {"count": 2, "oldest_age_s": 90.0}
    assert seen["messages_pending"] == {"count": 2, "oldest_age_s": 90.0, "retrying": 1}

"""Retention on both databases: only published, processed and old events go; what the
relay still owes stays, and so does everything that is the record."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from pingan import retention
from pingan.settings import SettingsError, load_settings
from pingan.store import Store, claim_event, emit, record_audit
from pingan.store.schema import audit, outbox, processed_events
from tests.conftest import NOW


def _event(store: Store, age_days: float, published: bool, processed: bool) -> str:
    at = NOW - timedelta(days=age_days)
    with store.transaction() as conn:
        event_id = emit(conn, "pingan.intake.reports", "k", {"type": "report.accepted"}, at)
    with store.transaction() as conn:  # outbox rows are written at commit
        if published:
            conn.execute(
                update(outbox).where(outbox.c.event_id == event_id).values(published_at=at)
            )
        if processed:
            assert claim_event(conn, "incidents", event_id, at)
            assert claim_event(conn, "dispatch", event_id, at)
        record_audit(conn, at, "system", "report.accepted", "report", 1)
    return event_id


def test_prune_keeps_what_the_relay_still_owes(store: Store) -> None:
    old_done = _event(store, 40, published=True, processed=True)
    old_unpublished = _event(store, 40, published=False, processed=False)
    old_unprocessed = _event(store, 40, published=True, processed=False)
    recent_done = _event(store, 2, published=True, processed=True)
    with store.transaction() as conn:  # a mark whose outbox row went long ago
        claim_event(conn, "notify", "gone-event", NOW - timedelta(days=60))

    pruned = retention.prune(store, NOW, keep_days=30)

    assert pruned == retention.Pruned(outbox=1, processed=3)
    with store.read() as conn:
        left = set(conn.execute(select(outbox.c.event_id)).scalars())
        marks = set(conn.execute(select(processed_events.c.event_id)).scalars())
        audited = conn.execute(select(audit.c.id)).all()
    assert left == {old_unpublished, old_unprocessed, recent_done}
    assert marks == {recent_done}
    assert old_done not in left and len(audited) == 4
    assert retention.prune(store, NOW, keep_days=30) == retention.Pruned(0, 0)


def test_prune_works_in_batches(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retention, "BATCH", 3)
    for _ in range(7):
        _event(store, 40, published=True, processed=True)
    assert retention.prune(store, NOW, keep_days=30) == retention.Pruned(outbox=7, processed=14)


def test_retention_days_is_checked(tmp_path) -> None:  # type: ignore[no-untyped-def]
    absent = tmp_path / "absent.toml"
    assert load_settings({}, absent).retention_days == 30
    assert load_settings({"PINGAN_RETENTION_DAYS": "90"}, absent).retention_days == 90
    with pytest.raises(SettingsError, match=r"retention_days = 0\.0: must be at least 1 day"):
        load_settings({"PINGAN_RETENTION_DAYS": "0"}, absent)

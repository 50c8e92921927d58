"""`pingan run` prunes old, finished outbox events when it starts (then hourly)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from pingan.clock import utcnow
from pingan.store import Store, claim_event, emit
from pingan.store.schema import outbox
from tests.conftest import ROSTER
from tests.e2e.harness import Stack, wait_for

pytestmark = pytest.mark.e2e


def test_run_prunes_finished_events_older_than_retention(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'pingan.db'}")
    store.create_schema()
    long_ago = utcnow() - timedelta(days=45)
    with store.transaction() as conn:
        done = emit(conn, "pingan.intake.reports", "1", {"type": "report.accepted"}, long_ago)
        conn.execute(update(outbox).where(outbox.c.event_id == done).values(published_at=long_ago))
        claim_event(conn, "incidents", done, long_ago)
    store.dispose()

    stack = Stack(tmp_path, {"PINGAN_ROSTER_FILE": str(ROSTER), "PINGAN_RETENTION_DAYS": "30"})
    try:
        wait_for(
            lambda: "relay pruned outbox=1 processed_marks=1" in stack.output(),
            what="the relay's prune line",
        )
        with stack.store.read() as conn:
            assert (
                conn.execute(select(outbox.c.id).where(outbox.c.event_id == done)).first() is None
            )
    finally:
        assert stack.stop() == 0

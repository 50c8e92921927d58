"""Every `pingan http` (and `pingan run`) loads the roster into the database at start.
Compose starts the scaled `http` service's containers together on a fresh database:
they must not trip over each other's crews (the compose rehearsal found the second
one dying at start on a duplicate key)."""

from __future__ import annotations

import threading

from sqlalchemy import func, select

from pingan.actions import sync_roster
from pingan.crews import load_roster
from pingan.store import Store
from pingan.store.schema import audit, crews, staff
from tests.conftest import NOW, ROSTER


def test_concurrent_starts_load_the_roster_once(store: Store) -> None:
    roster = load_roster(ROSTER)
    others = [Store(store.url) for _ in range(3)]
    start = threading.Barrier(len(others))
    errors: list[BaseException] = []

    def load(each: Store) -> None:
        try:
            start.wait(10)
            sync_roster(each, roster, NOW)
        except BaseException as exc:  # reported below, with the others
            errors.append(exc)

    threads = [threading.Thread(target=load, args=(s,)) for s in others]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for each in others:
        each.dispose()
    assert errors == []
    with store.read() as conn:
        assert conn.execute(select(func.count()).select_from(crews)).scalar_one() == len(
            roster.crews
        )
        assert conn.execute(select(func.count()).select_from(staff)).scalar_one() == len(
            roster.staff
        )
        upserted = conn.execute(
            select(func.count()).select_from(audit).where(audit.c.action == "crew.upserted")
        ).scalar_one()
    assert upserted == len(roster.crews)  # each crew loaded once, not once per process

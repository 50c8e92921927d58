"""The scheduler lease on both databases: one holder at a time, identified by host and
pid (containers all run as pid 1), taken over when the holder lapses or died."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

import pingan.store.db as db
from pingan.store import Store, process_id, take_lease
from pingan.store.schema import components
from tests.conftest import NOW

TTL = 30.0


def held_by(store: Store, holder: str, at=NOW) -> None:  # type: ignore[no-untyped-def]
    with store.transaction() as conn:
        conn.execute(components.delete().where(components.c.name == "scheduler"))
        conn.execute(
            components.insert().values(
                name="scheduler", pid=1, state="running", detail=holder, updated_at=at
            )
        )


def holder(store: Store) -> str:
    with store.read() as conn:
        return str(
            conn.execute(
                select(components.c.detail).where(components.c.name == "scheduler")
            ).scalar_one()
        )


def test_one_holder_renews_others_wait(store: Store) -> None:
    assert take_lease(store, "scheduler", TTL, NOW)
    assert holder(store) == process_id() == f"{socket.gethostname()}:{os.getpid()}"
    assert take_lease(store, "scheduler", TTL, NOW + timedelta(seconds=10))  # renewal
    held_by(store, "other-host:1")  # another container, also pid 1
    assert not take_lease(store, "scheduler", TTL, NOW + timedelta(seconds=5))
    assert holder(store) == "other-host:1"


def test_lapsed_or_stopped_lease_is_taken_over(store: Store) -> None:
    held_by(store, "other-host:1")
    assert take_lease(store, "scheduler", TTL, NOW + timedelta(seconds=TTL + 1))
    held_by(store, "other-host:1")
    with store.transaction() as conn:
        conn.execute(components.update().values(state="stopped"))
    assert take_lease(store, "scheduler", TTL, NOW)


def test_holder_killed_on_this_host_is_taken_over_at_once(store: Store) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    held_by(store, f"{socket.gethostname()}:{gone.pid}")
    assert take_lease(store, "scheduler", TTL, NOW)
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        held_by(store, f"{socket.gethostname()}:{alive.pid}")
        assert not take_lease(store, "scheduler", TTL, NOW)
    finally:
        alive.kill()
        alive.wait()


def test_concurrent_takers_one_wins(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Four processes on four hosts race for a lapsed lease (threads, each with its
    own identity): exactly one wins."""
    held_by(store, "old-host:1")
    later = NOW + timedelta(seconds=TTL + 1)
    local = threading.local()
    monkeypatch.setattr(db, "process_id", lambda: local.me)
    barrier = threading.Barrier(4)
    wins: list[str] = []
    errors: list[BaseException] = []

    def race(n: int) -> None:
        local.me = f"host-{n}:1"
        barrier.wait()
        try:
            if take_lease(store, "scheduler", TTL, later):
                wins.append(local.me)
        except BaseException as exc:  # a rival must lose quietly, not crash
            errors.append(exc)

    threads = [threading.Thread(target=race, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert len(wins) == 1 and holder(store) == wins[0]


def test_workers_reporting_their_state_at_once_never_collide(store: Store) -> None:
    """Every worker of a scaled deployment marks `worker` ready when a rebalance ends,
    all at the same moment, and writes its heartbeat there: on PostgreSQL two of them
    deleting and inserting the row together failed on its primary key and the worker
    crashed (found by the compose rehearsal, three workers)."""
    from pingan.store import mark_component

    stores = [Store(store.url) for _ in range(4)]
    start = threading.Barrier(len(stores))
    errors: list[BaseException] = []

    def report(each: Store) -> None:
        try:
            start.wait(10)
            for n in range(40):
                mark_component(each, "worker", "ready", f"round {n}")
        except BaseException as exc:  # reported below, with the others
            errors.append(exc)

    threads = [threading.Thread(target=report, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for each in stores:
        each.dispose()
    assert errors == []
    with store.read() as conn:
        rows = conn.execute(select(components).where(components.c.name == "worker")).all()
    assert [(r.state, r.detail) for r in rows] == [("ready", "round 39")]

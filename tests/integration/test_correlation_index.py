"""Correlation reads its candidates through indexes (nearby open site incidents of the
report's playbook) instead of every open incident. It must decide exactly what the
full scan decides, including for an incident whose older snapshot has a wider radius."""

from __future__ import annotations

import random
from datetime import timedelta

from pingan.core.events import ReportReceived
from pingan.core.matching import match
from pingan.store import Store
from pingan.store.incidents import insert_incident, load_open_incidents, load_report_candidates
from playbooks.index import PlaybookIndex
from tests.conftest import NOW


def _open_tree_incident(conn, playbook, place: tuple[float, float]) -> None:  # type: ignore[no-untyped-def]
    insert_incident(
        conn,
        category="fallen_tree",
        level="routine",
        scope="site",
        district=None,
        playbook=playbook,
        lat=place[0],
        lon=place[1],
        now=NOW,
    )


def test_candidates_decide_what_the_full_scan_decides(store: Store, index: PlaybookIndex) -> None:
    trees = index.for_report("fallen_tree")
    assert trees is not None and trees.correlation is not None
    wide = trees.model_copy(
        update={
            "version": trees.version + 1,
            "correlation": trees.correlation.model_copy(update={"radius_m": 900.0}),
        }
    )
    rng = random.Random(7)
    with store.transaction() as conn:
        for n in range(300):
            place = (33.50 + rng.random() * 0.16, 113.95 + rng.random() * 0.14)
            _open_tree_incident(conn, wide if n % 50 == 0 else trees, place)
        # District-wide incidents never take a report by distance.
        insert_incident(
            conn,
            category="gale",
            level="yellow",
            scope="district",
            district="源汇区",
            playbook=trees,
            lat=33.57,
            lon=114.01,
            now=NOW,
        )
    outcomes: dict[str, int] = {}
    with store.read() as conn:
        everything = load_open_incidents(conn, [trees.id])
        for n in range(400):
            report = ReportReceived(
                n,
                "fallen_tree",
                33.50 + rng.random() * 0.16,
                113.95 + rng.random() * 0.14,
                NOW + timedelta(minutes=5),
            )
            near = load_report_candidates(conn, report, [trees.id])
            assert len(near) < 40  # a handful, not 301
            by_index = match(report, near, index, report.at)
            by_scan = match(report, everything, index, report.at)
            assert by_index == by_scan, (report, by_index, by_scan)
            kind = type(by_index[0]).__name__
            outcomes[kind] = outcomes.get(kind, 0) + 1
    # The sample holds both answers (joins, mostly to the wide old snapshots, and opens).
    assert outcomes.get("AttachToIncident", 0) > 5 and outcomes.get("OpenIncident", 0) > 5


def test_a_fresh_table_finds_candidates_through_the_open_incidents_index(
    store: Store, index: PlaybookIndex
) -> None:
    """A storm on a new database: thousands of incidents before autovacuum has analysed
    the table. Without statistics PostgreSQL once searched through the radius index and
    read every open incident of the playbook for each report; the candidates' search
    must go by position, and the largest radius by its own index."""
    from sqlalchemy import event as sa_event

    trees = index.for_report("fallen_tree")
    assert trees is not None
    with store.transaction() as conn:
        if not store.is_sqlite:  # no analysis behind the test's back
            conn.exec_driver_sql("ALTER TABLE incidents SET (autovacuum_enabled = false)")
        for n in range(500):
            _open_tree_incident(conn, trees, (33.50 + (n % 25) * 0.006, 113.95 + (n // 25) * 0.007))
    asked: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, *args) -> None:  # type: ignore[no-untyped-def]
        if statement.lstrip().startswith("SELECT") and "FROM incidents" in statement:
            asked.append((statement, parameters))

    sa_event.listen(store.engine, "before_cursor_execute", capture)
    with store.transaction() as conn:
        report = ReportReceived(1, "fallen_tree", 33.55, 114.0, NOW)
        load_report_candidates(conn, report, [trees.id])
    sa_event.remove(store.engine, "before_cursor_execute", capture)
    plans = {}
    with store.read() as conn:
        for statement, parameters in asked:
            explain = "EXPLAIN QUERY PLAN " if store.is_sqlite else "EXPLAIN "
            rows = conn.exec_driver_sql(explain + statement, parameters).all()
            kind = "radius" if "max(" in statement else "near"
            plans[kind] = " ".join(str(r[-1]) for r in rows)
    assert "ix_incidents_open_near" in plans["near"], plans["near"]
    assert "ix_incidents_open_radius" in plans["radius"], plans["radius"]

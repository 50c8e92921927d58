"""Reports from concurrent requests share transactions (pingan/intake/accept.py
GroupCommit): every request gets its own report back, only once committed; a report
that fails alone does not take the others in its batch down with it."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from pingan.intake.accept import GroupCommit
from pingan.intake.reports import ReportDraft
from pingan.store import Store
from pingan.store.schema import outbox, reports
from tests.conftest import NOW


def _draft(n: int, phone: str = "") -> ReportDraft:
    contact = {"phone": phone} if phone else {}
    return ReportDraft("fallen_tree", 33.55 + n * 0.001, 114.02, None, f"树{n}", None, contact)


def test_concurrent_reports_commit_together_and_each_gets_its_own_id(store: Store) -> None:
    """Each request is answered with the id of its own report, though on PostgreSQL a
    commit's reports go in with one statement (its ids come back in its rows' order)."""
    from sqlalchemy import event as sa_event

    intake = GroupCommit(store)
    commits: list[int] = []
    store.on_emit.append(lambda: commits.append(1))
    inserts: list[str] = []

    def count_inserts(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
        if statement.startswith("INSERT INTO reports"):
            inserts.append(statement)

    sa_event.listen(store.engine, "before_cursor_execute", count_inserts)

    async def storm() -> list[int]:
        answers = await asyncio.gather(
            *(intake.accept(_draft(n), "open311", "test", NOW) for n in range(50))
        )
        return [a.report_id for a in answers]

    ids = asyncio.run(storm())
    assert sorted(ids) == list(range(1, 51))  # each request its own report
    assert len(commits) < 50  # and they shared commits
    if not store.is_sqlite:  # (SQLite, in-process, has SQLAlchemy insert row by row)
        assert len(inserts) == len(commits)  # one statement for each commit's reports
    with store.read() as conn:
        said = dict(conn.execute(select(reports.c.id, reports.c.description)).all())
        assert [said[i] for i in ids] == [f"树{n}" for n in range(50)]
        assert conn.execute(select(func.count()).select_from(reports)).scalar_one() == 50
        assert conn.execute(select(func.count()).select_from(outbox)).scalar_one() == 50


def test_the_same_caller_twice_in_one_batch_is_folded(store: Store) -> None:
    intake = GroupCommit(store)
    same = _draft(1, phone="+8613800000001")

    async def twice() -> list:
        return await asyncio.gather(
            intake.accept(same, "open311", "test", NOW), intake.accept(same, "open311", "test", NOW)
        )

    first, second = asyncio.run(twice())
    assert (second.report_id, second.duplicate) == (first.report_id, True)


def test_a_report_that_fails_is_answered_with_its_error_and_the_rest_commit(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pingan.intake import accept as module

    real = module._report_row

    def fails_for_tree_3(arrival, *args, **kwargs):  # type: ignore[no-untyped-def]
        if arrival.draft.description == "树3":
            raise RuntimeError("disk full")
        return real(arrival, *args, **kwargs)

    monkeypatch.setattr(module, "_report_row", fails_for_tree_3)
    intake = GroupCommit(store)

    async def storm() -> list:
        return await asyncio.gather(
            *(intake.accept(_draft(n), "open311", "test", NOW) for n in range(6)),
            return_exceptions=True,
        )

    answers = asyncio.run(storm())
    failed = [a for a in answers if isinstance(a, Exception)]
    assert [str(e) for e in failed] == ["disk full"]
    with store.read() as conn:
        assert conn.execute(select(func.count()).select_from(reports)).scalar_one() == 5

"""Schema migrations on both databases: the migrations build exactly the tables
schema.py declares (so a change to schema.py without a migration fails here), a
database from before migrations is adopted, and concurrent starts migrate once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, select, text

from pingan.store import Store
from pingan.store.migrate import BASELINE, config
from pingan.store.schema import assignments, incidents, metadata, outbox
from tests.conftest import NOW, fresh_postgres_database


@contextmanager
def empty_database(kind: str, tmp_path: Path) -> Iterator[Store]:
    if kind == "sqlite":
        store = Store(f"sqlite:///{tmp_path / 'fresh.db'}")
        yield store
        store.dispose()
        return
    with fresh_postgres_database() as url:
        store = Store(url)
        yield store
        store.dispose()


def head() -> str:
    return str(ScriptDirectory.from_config(config()).get_current_head())


def version(store: Store) -> str:
    with store.read() as conn:
        return str(conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one())


def drift(store: Store) -> list:
    with store.read() as conn:
        return compare_metadata(MigrationContext.configure(conn), metadata)


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_migrations_build_exactly_the_declared_schema(kind: str, tmp_path: Path) -> None:
    with empty_database(kind, tmp_path) as store:
        store.create_schema()
        assert version(store) == head()
        assert drift(store) == []
        store.create_schema()  # every process runs it at start: a no-op the second time
        assert version(store) == head()


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_database_from_before_migrations_is_adopted(kind: str, tmp_path: Path) -> None:
    with empty_database(kind, tmp_path) as store:
        # How the first release created its tables: the baseline schema, unversioned.
        with store.engine.begin() as conn:
            cfg = config(conn)
            command.upgrade(cfg, BASELINE)
            conn.execute(text("DROP TABLE alembic_version"))
        with store.transaction() as conn:
            conn.execute(
                outbox.insert().values(
                    event_id="e1", topic="t", key="k", payload={}, created_at=NOW
                )
            )
        store.create_schema()
        assert version(store) == head()
        assert drift(store) == []
        with store.read() as conn:
            assert conn.execute(select(outbox.c.event_id)).scalars().all() == ["e1"]


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_concurrent_starts_migrate_once(kind: str, tmp_path: Path) -> None:
    with empty_database(kind, tmp_path) as first:
        stores = [first] + [Store(first.url) for _ in range(2)]
        errors: list[BaseException] = []

        def start(store: Store) -> None:
            try:
                store.create_schema()
            except BaseException as exc:  # reported below, with the others
                errors.append(exc)

        threads = [threading.Thread(target=start, args=(s,)) for s in stores]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        for extra in stores[1:]:
            extra.dispose()
        assert errors == []
        assert version(first) == head()
        with first.read() as conn:
            assert "reports" in inspect(conn).get_table_names()


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_tasks_from_before_0010_get_their_reason_as_data(kind: str, tmp_path: Path) -> None:
    """The console words why a crew was chosen from data; tasks written before that
    data was kept get it from the English they were written with (and one that text
    does not fit keeps none: the console shows its text)."""
    with empty_database(kind, tmp_path) as store:
        with store.engine.begin() as conn:
            command.upgrade(config(conn), "0009")
        whys = {
            1: "owns road segment yuanhui-01: 0.1 km from base, 0 active task(s), "
            "2 in the last 24 h",
            2: "same unit u1 as the segment owner (owner busy or off shift): 3.0 km from base, "
            "1 active task(s), 0 in the last 24 h",
            3: "nearest available with skill 'tree': no location given, 0 active task(s), "
            "0 in the last 24 h",
            4: "chosen by hand",
        }
        with store.engine.begin() as conn:
            conn.execute(  # the crews table as it was then (no name_en)
                text(
                    "INSERT INTO crews (id, name, leader, phone, skills, unit, home_lat, "
                    "home_lon, capacity, equipment, segments, shift, overrides) VALUES "
                    "('c1', 'c', '', '', '[\"tree\"]', 'u1', 0, 0, 1, '[]', '[]', "
                    "'00:00-00:00', '[]')"
                )
            )
            conn.execute(
                incidents.insert().values(
                    id=1,
                    category="fallen_tree",
                    status="dispatched",
                    level="routine",
                    scope="site",
                    playbook_id="p",
                    playbook_version=1,
                    playbook_snapshot={},
                    opened_at=NOW,
                    updated_at=NOW,
                )
            )
            for n, why in whys.items():
                conn.execute(
                    assignments.insert().values(
                        id=n,
                        incident_id=1,
                        crew_id="c1",
                        skill="tree",
                        state="assigned",
                        why=why,
                        created_at=NOW,
                        updated_at=NOW,
                    )
                )
        store.create_schema()
        assert drift(store) == []
        with store.read() as conn:
            found = dict(conn.execute(select(assignments.c.id, assignments.c.reason)).all())
        base = {"skill": "tree", "unit": "u1", "load": 0, "recent": 0}
        assert found == {
            1: base | {"rule": "segment_owner", "segment": "yuanhui-01", "km": 0.1, "recent": 2},
            2: base | {"rule": "owner_unit", "segment": None, "km": 3.0, "load": 1},
            3: base | {"rule": "nearest", "segment": None, "km": None},
            4: None,
        }

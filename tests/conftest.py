from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import DBAPIError

from pingan.actions import sync_roster
from pingan.crews import load_roster
from pingan.settings import PROJECT_ROOT
from pingan.store import Store
from playbooks.index import PlaybookIndex
from playbooks.registry import PlaybookRegistry

NOW = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
PLAYBOOKS_DIR = PROJECT_ROOT / "playbooks"
ROSTER = Path(__file__).parent / "data" / "roster.yaml"
POSTGRES_URL = os.environ.get("PINGAN_TEST_POSTGRES_URL", "")


@pytest.fixture(scope="session")
def registry() -> PlaybookRegistry:
    return PlaybookRegistry(PLAYBOOKS_DIR)


@pytest.fixture(scope="session")
def index(registry: PlaybookRegistry) -> PlaybookIndex:
    return registry.index


def require_postgres() -> str:
    if not POSTGRES_URL:
        if os.environ.get("CI"):
            pytest.fail("PINGAN_TEST_POSTGRES_URL is not set in CI")
        pytest.skip("PINGAN_TEST_POSTGRES_URL not set")
    return POSTGRES_URL


@contextmanager
def fresh_postgres_database(
    server: str | None = None, prefix: str = "pingan_test"
) -> Iterator[str]:
    """A new database on `server` (the test PostgreSQL server unless given), dropped
    afterwards: one run's rows never meet another's."""
    server = server or require_postgres()
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.rsplit("/", 1)[0] + f"/{name}"
    finally:
        drop_database(admin, name)
        admin.dispose()


def drop_database(admin: Engine, name: str) -> None:
    # FORCE ends our own sessions, but may not end an autovacuum worker that just
    # started on the new database (that needs pg_signal_backend): it finishes soon.
    for attempt in range(20):
        try:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
            return
        except DBAPIError:
            if attempt == 19:
                raise
            time.sleep(0.5)


@contextmanager
def new_store(sqlite: bool, tmp_path: Path, name: str = "test.db") -> Iterator[Store]:
    """An empty store: SQLite in `tmp_path`, else a fresh PostgreSQL database."""
    if sqlite:
        s = Store(f"sqlite:///{tmp_path / name}")
        s.create_schema()
        yield s
        s.dispose()
        return
    with fresh_postgres_database() as url:
        pg = Store(url)
        pg.create_schema()
        yield pg
        pg.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """The store on both databases we support. PostgreSQL runs where
    PINGAN_TEST_POSTGRES_URL is set (`make test` starts a local server and sets it)."""
    with new_store(request.param == "sqlite", tmp_path) as s:
        yield s


@pytest.fixture
def staffed_store(store: Store) -> Store:
    sync_roster(store, load_roster(ROSTER), NOW)
    return store

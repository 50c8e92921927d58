"""Engine set-up and the three writes every state change is made of: the change itself,
an audit row, and an outbox event announcing it, all in one transaction."""

from __future__ import annotations

import fcntl
import functools
import json
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Connection,
    Engine,
    Insert,
    Row,
    Table,
    TextClause,
    create_engine,
    event,
    insert,
    select,
    text,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from pingan.store import schema


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def new_event_id() -> str:
    return uuid.uuid4().hex


class Store:
    """One engine per process. SQLite runs in WAL mode so the HTTP process and the
    worker process can read while the other writes."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        # Called (from the committing thread) after a transaction that emitted events
        # commits: the relay in this process publishes them at once instead of polling.
        self.on_emit: list[Callable[[], None]] = []
        self._writer: AbstractContextManager[Any] = nullcontext()
        if self.is_sqlite:
            path = url.removeprefix("sqlite:///")
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._writer = _SqliteWriter(path)
            self.engine: Engine = create_engine(
                url, connect_args={"timeout": 30, "check_same_thread": False}
            )
            event.listen(self.engine, "connect", _sqlite_pragmas)
            # Take the write lock at BEGIN, so two processes never deadlock upgrading
            # read locks to write locks half-way through a transaction.
            event.listen(self.engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
            # Readers take no lock at all: WAL gives them a consistent snapshot.
            self.read_engine: Engine = create_engine(
                url, connect_args={"timeout": 30, "check_same_thread": False}
            )
            event.listen(self.read_engine, "connect", _sqlite_pragmas)
            event.listen(self.read_engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN"))
        else:
            self.engine = create_engine(url, pool_pre_ping=True)
            self.read_engine = self.engine

    def create_schema(self) -> None:
        """Create or upgrade the tables to the newest migration."""
        from pingan.store.migrate import upgrade

        upgrade(self.engine)

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        emitted = False
        with self._writer, self.engine.begin() as conn:
            conn.info[SCRATCH] = {}
            try:
                yield conn
                _write_deferred(conn)
            finally:
                conn.info.pop(SCRATCH, None)
                emitted = bool(conn.info.pop("emitted", False))
        if emitted:
            for listener in self.on_emit:
                listener()

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.read_engine.connect() as conn:
            yield conn

    def dispose(self) -> None:
        self.engine.dispose()
        self.read_engine.dispose()
        if isinstance(self._writer, _SqliteWriter):
            self._writer.close()


class _SqliteWriter:
    """SQLite has one writer at a time, and a writer that finds the lock taken sleeps
    in SQLite's busy handler in steps of up to 100 ms, however soon the lock is free:
    under a storm intake and the worker starved each other. Writers of every process
    instead queue on a lock file beside the database (flock wakes a waiter at once)
    and the threads of one process on a mutex (flock is per open file, not thread)."""

    def __init__(self, db_path: str) -> None:
        self._threads = threading.Lock()
        self._fd: int | None = None
        if db_path and db_path != ":memory:":
            self._fd = os.open(f"{db_path}.writer", os.O_RDWR | os.O_CREAT, 0o600)

    def __enter__(self) -> None:
        self._threads.acquire()
        if self._fd is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            except BaseException:
                self._threads.release()
                raise

    def __exit__(self, *exc: object) -> None:
        try:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # pysqlite's own transaction handling would BEGIN DEFERRED behind our back.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def emit(
    conn: Connection,
    topic: str,
    key: str,
    payload: dict[str, Any],
    now: datetime,
    event_id: str | None = None,
) -> str:
    """Queue an event in the outbox, inside the caller's transaction."""
    event_id = event_id or new_event_id()
    body = {"event_id": event_id, "at": now.isoformat(), **payload}
    conn.info["emitted"] = True
    # Values as parameters, not in the statement: the compiled insert is cached once,
    # instead of a cache key built over every payload (the hottest write there is).
    write_at_commit(
        conn,
        _OUTBOX_INSERT,
        {"event_id": event_id, "topic": topic, "key": key, "payload": body, "created_at": now},
    )
    return event_id


_OUTBOX_INSERT = insert(schema.outbox)
_AUDIT_INSERT = insert(schema.audit)


# conn.info outlives a transaction (it belongs to the pooled DBAPI connection), so
# what one transaction memoises lives under this key, emptied when it ends.
SCRATCH = "pingan.transaction_scratch"
# The memo of crews, their load and the warnings in force that dispatch keeps within one
# transaction; whoever frees crews inside a transaction drops it (crews_freed).
DISPATCH_CONTEXT = "dispatch_context"


# Outbox, audit and history rows (and a report's link to its incident) are only read by
# other transactions (the relay, the console, dispatch), so a Store transaction writes
# them when it commits: each statement's rows at once, in the order they were added,
# instead of a statement per row (a storm writes several of each for every report), and
# on PostgreSQL all of them in one round trip.
_DEFERRED = "rows_written_at_commit"


def write_at_commit(conn: Connection, statement: Any, row: dict[str, Any]) -> None:
    """Execute `statement` (an INSERT or UPDATE) with `row` when the Store transaction
    commits (at once outside one): for rows nothing in the same transaction reads."""
    memo = conn.info.get(SCRATCH)
    if memo is None:  # not in a Store transaction: nobody would flush it
        conn.execute(statement, row)
        return
    memo.setdefault(_DEFERRED, {}).setdefault(statement, []).append(row)


def _write_deferred(conn: Connection) -> None:
    deferred = conn.info[SCRATCH].pop(_DEFERRED, {})
    if not deferred:
        return
    if conn.dialect.name != "postgresql":
        for statement, rows in deferred.items():
            conn.execute(statement, rows)
        return
    # No statement's result is needed: psycopg's pipeline sends them all and waits once.
    with conn.connection.driver_connection.pipeline():  # type: ignore[union-attr]
        for statement, rows in deferred.items():
            columns = tuple(rows[0])
            if isinstance(statement, Insert) and all(tuple(r) == columns for r in rows[1:]):
                conn.execute(*_unnest_insert(statement.table, rows))
            else:
                conn.execute(statement, rows)


def _unnest_insert(
    table: Table, rows: list[dict[str, Any]], tail: str = ""
) -> tuple[TextClause, dict[str, list[Any]]]:
    """PostgreSQL: rows (all with the same keys) in one statement whose text never
    changes, each column's values one array: prepared once per connection, where a
    multi-row VALUES is a new statement for the server to parse and for the driver to
    rewrite every time. `tail`: what follows the insert (ON CONFLICT, RETURNING)."""
    columns = tuple(rows[0])
    arrays = {
        c: [
            v if v is None or not isinstance(table.c[c].type, JSON) else _json_text(v)
            for v in (r[c] for r in rows)
        ]
        for c in columns
    }
    return _unnest_statement(table, columns, tail), arrays


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)  # Chinese stays readable in psql


@functools.cache
def _unnest_statement(table: Table, columns: tuple[str, ...], tail: str) -> TextClause:
    casts = ", ".join(
        f"CAST(:{c} AS TEXT[])::JSON[]"  # JSON as its text (no driver adapts a dict array)
        if isinstance(table.c[c].type, JSON)
        else f"CAST(:{c} AS {table.c[c].type.compile(dialect=postgresql.dialect())}[])"
        for c in columns
    )
    return text(
        f"INSERT INTO {table.name} ({', '.join(columns)}) SELECT * FROM unnest({casts}) {tail}"
    )


def scratch(conn: Connection) -> dict[str, Any]:
    """A memo for the current Store transaction (outside one: a throwaway dict)."""
    found = conn.info.get(SCRATCH)
    return found if found is not None else {}


# Rows a batch read at its start for all its events at once (streams/handlers.py):
# kind -> {key: row}. Each is taken once, by the first of the batch's events that needs
# it; a later event for the same key reads afresh, since the first may have changed it.
_READ_AHEAD = "read_ahead"


def read_ahead(conn: Connection, kind: str, rows: dict[Any, Any]) -> None:
    """Keep `rows` for this transaction's events to take (see take_read_ahead)."""
    memo = conn.info.get(SCRATCH)
    if memo is not None:
        memo.setdefault(_READ_AHEAD, {})[kind] = rows


def rows_read_ahead(conn: Connection, kind: str) -> dict[Any, Any]:
    """What is read ahead of `kind` and not yet taken (to read more ahead from it)."""
    return dict(scratch(conn).get(_READ_AHEAD, {}).get(kind, {}))


def take_read_ahead(conn: Connection, kind: str, key: Any) -> Any | None:
    """The row read ahead for `key`, once; None when there is none (read it then)."""
    return scratch(conn).get(_READ_AHEAD, {}).get(kind, {}).pop(key, None)


def crews_freed(conn: Connection) -> None:
    """Assignments were cancelled in this transaction: the next dispatch in it reads
    the crews' load afresh."""
    scratch(conn).pop(DISPATCH_CONTEXT, None)


# The actor the system itself writes in the audit trail (people and API tokens have names).
SYSTEM = "system"


def record_audit(
    conn: Connection,
    now: datetime,
    actor: str,
    action: str,
    entity: str,
    entity_id: str | int,
    detail: dict[str, Any] | None = None,
) -> None:
    write_at_commit(
        conn,
        _AUDIT_INSERT,
        {
            "at": now,
            "actor": actor,
            "action": action,
            "entity": entity,
            "entity_id": str(entity_id),
            "detail": detail or {},
        },
    )


# A batch's claims made in one statement (claim_events): consumer -> (ids asked, ids
# claimed and not yet answered).
_CLAIMED_AHEAD = "claimed_ahead"


def claim_event(conn: Connection, consumer: str, event_id: str, now: datetime) -> bool:
    """True the first time `consumer` sees `event_id`; False for a redelivery.

    Called inside the consumer's transaction, so the claim commits with the effects
    or not at all."""
    asked, claimed_ahead = scratch(conn).get(_CLAIMED_AHEAD, {}).get(consumer, ((), set()))
    if event_id in asked:
        if event_id in claimed_ahead:
            claimed_ahead.remove(event_id)  # a second copy in the same batch: a redelivery
            return True
        return False
    # One statement: the insert that finds the claim already made does nothing (both
    # SQLite and PostgreSQL speak ON CONFLICT DO NOTHING), instead of a look, a
    # savepoint and an insert.
    upsert = _CLAIM[conn.dialect.name]
    claimed = conn.execute(upsert, {"event_id": event_id, "consumer": consumer, "at": now})
    return claimed.first() is not None


def claim_events(conn: Connection, consumer: str, event_ids: list[str], now: datetime) -> None:
    """Claim a batch's events in one statement, in the batch's transaction; each
    claim_event for them then answers from what it claimed instead of a round trip."""
    memo = conn.info.get(SCRATCH)
    if memo is None:  # its answers would be lost, and each event then seen as claimed
        raise RuntimeError("claim_events needs a Store transaction")
    wanted = list(dict.fromkeys(event_ids))
    if wanted:
        rows = [{"event_id": e, "consumer": consumer, "at": now} for e in wanted]
        if conn.dialect.name == "postgresql":
            statement = _unnest_insert(schema.processed_events, rows, _CLAIM_TAIL)
            claimed = set(conn.execute(*statement).scalars().all())
        else:
            claimed = set(conn.execute(_CLAIM[conn.dialect.name], rows).scalars().all())
        memo.setdefault(_CLAIMED_AHEAD, {})[consumer] = (set(wanted), claimed)


def _dialect_insert(conn: Connection) -> Any:
    """The INSERT that speaks ON CONFLICT in this connection's dialect (SQLite and
    PostgreSQL both do)."""
    return sqlite_insert if conn.dialect.name == "sqlite" else postgresql_insert


def insert_or_ignore(conn: Connection, table: Any, *conflict: str) -> Any:
    """INSERT … ON CONFLICT (conflict columns) DO NOTHING, in this connection's dialect."""
    return _dialect_insert(conn)(table).on_conflict_do_nothing(
        index_elements=list(conflict) or None
    )


def insert_or_ignore_prebuilt(table: Any, returning: Any) -> dict[str, Any]:
    """insert_or_ignore built once per dialect (on any conflict), RETURNING `returning`
    for a row that went in: for statements that run for every event of a storm."""
    return {
        "sqlite": sqlite_insert(table).on_conflict_do_nothing().returning(returning),
        "postgresql": postgresql_insert(table).on_conflict_do_nothing().returning(returning),
    }


_CLAIM = insert_or_ignore_prebuilt(schema.processed_events, schema.processed_events.c.event_id)
_CLAIM_TAIL = "ON CONFLICT DO NOTHING RETURNING event_id"


def mark_component(
    store: Store, name: str, state: str, detail: str = "", now: datetime | None = None
) -> None:
    """Record the state of a part of this deployment (a process, the playbooks)."""
    with store.transaction() as conn:
        _write_component(conn, name, state, detail, now or datetime.now(UTC))


def _write_component(conn: Connection, name: str, state: str, detail: str, at: datetime) -> None:
    """One upsert: the workers of a scaled deployment write the same row at the same
    moment (ready after a rebalance, heartbeats), and a delete then insert from two of
    them at once collided on the primary key."""
    upsert = _dialect_insert(conn)(schema.components).values(
        name=name, pid=os.getpid(), state=state, detail=detail, updated_at=at
    )
    conn.execute(
        upsert.on_conflict_do_update(
            index_elements=["name"],
            set_={c: upsert.excluded[c] for c in ("pid", "state", "detail", "updated_at")},
        )
    )


def process_id() -> str:
    """Who this process is across a deployment: host and pid (in containers every
    process may be pid 1, so the pid alone says nothing)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _holder_is_dead(holder: str) -> bool:
    """A holder on this host whose process is gone (killed -9, then restarted)."""
    host, _, pid = holder.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


# How long a lease outlives its holder's last renewal; holders renew every third of it.
LEASE_S = 30.0
LEASE_RENEW_S = LEASE_S / 3
# How often a live worker writes its `components` heartbeat (readiness reads it).
HEARTBEAT_S = 5.0


def take_lease(store: Store, name: str, ttl_s: float, now: datetime) -> bool:
    """Take or renew the lease `name` (a `components` row whose detail is the holder).
    True while this process holds it; False while another live process does. One
    transaction (and on PostgreSQL an advisory lock), so two processes never both win."""
    me = process_id()
    with store.transaction() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:n))"), {"n": f"lease:{name}"})
        row = conn.execute(
            select(schema.components).where(schema.components.c.name == name)
        ).first()
        if (
            row is not None
            and row.state == "running"
            and row.detail != me
            and as_utc(row.updated_at) > now - timedelta(seconds=ttl_s)  # type: ignore[operator]
            and not _holder_is_dead(row.detail)
        ):
            return False
        _write_component(conn, name, "running", me, now)
    return True


def component_row(store: Store, name: str) -> Row[Any] | None:
    """A part's state, detail and when it last said so (None: it never did)."""
    with store.read() as conn:
        return conn.execute(
            select(schema.components).where(schema.components.c.name == name)
        ).first()


def component_state(store: Store, name: str) -> str | None:
    row = component_row(store, name)
    return row.state if row is not None else None

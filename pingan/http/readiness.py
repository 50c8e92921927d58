"""Readiness: may this deployment take traffic? Its parts each answer: the database
(a query), the broker (a connection to a bootstrap address), the relay (its lease,
renewed every few seconds while it publishes) and a worker (its heartbeat). `/readyz`
is 503 with the parts that are not, so a load balancer waits and an operator reads
why."""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, text

from pingan.store import HEARTBEAT_S, LEASE_S, Store, as_utc
from pingan.store.schema import components

# A worker whose heartbeat is older than this is not counted as up.
WORKER_SILENT_AFTER = timedelta(seconds=HEARTBEAT_S * 3)
RELAY_SILENT_AFTER = timedelta(seconds=LEASE_S)


@dataclass(frozen=True)
class Check:
    ok: bool
    detail: str


def broker_check(bootstrap: str, timeout_s: float = 1.0) -> Check:
    """Some bootstrap address answers a Kafka ApiVersions request in time: a stopped
    broker refuses the connection, a hung one (whose kernel still accepts it) is silent."""
    failures = []
    for address in filter(None, (a.strip() for a in bootstrap.split(","))):
        host, _, port = address.rpartition(":")
        try:
            _api_versions(host or "localhost", int(port), timeout_s)
            return Check(True, address)
        except (OSError, ValueError) as exc:
            failures.append(f"{address}: {exc or type(exc).__name__}")
    return Check(False, "; ".join(failures) or "no broker address configured")


# ApiVersions v0 (key 18): the request every Kafka client sends first, with no body.
_CLIENT = b"pingan-readyz"
_CORRELATION = 0x50494E47
_API_VERSIONS = struct.pack(">hhih", 18, 0, _CORRELATION, len(_CLIENT)) + _CLIENT


def _api_versions(host: str, port: int, timeout_s: float) -> None:
    with socket.create_connection((host, port), timeout_s) as conn:
        conn.settimeout(timeout_s)
        conn.sendall(struct.pack(">i", len(_API_VERSIONS)) + _API_VERSIONS)
        head = b""
        while len(head) < 10:  # size, correlation id, error code
            chunk = conn.recv(10 - len(head))
            if not chunk:
                raise ConnectionError("closed the connection")
            head += chunk
    _size, correlation, error = struct.unpack(">iih", head)
    if correlation != _CORRELATION:
        raise ValueError(f"answered another request ({correlation})")
    if error:
        raise ValueError(f"answered with error code {error}")


def readiness(store: Store, bootstrap: str, now: datetime) -> dict[str, Check]:
    checks = {"broker": broker_check(bootstrap)}
    try:
        with store.read() as conn:
            conn.execute(text("SELECT 1"))
            rows = {
                r.name: r
                for r in conn.execute(
                    select(components).where(components.c.name.in_(("relay", "worker")))
                )
            }
    except Exception as exc:
        reason = f"database did not answer: {type(exc).__name__}"
        return checks | {
            "database": Check(False, str(exc)[:200]),
            "relay": Check(False, reason),
            "worker": Check(False, reason),
        }
    checks["database"] = Check(True, "answered")
    checks["relay"] = _fresh(rows.get("relay"), "running", RELAY_SILENT_AFTER, now)
    checks["worker"] = _fresh(rows.get("worker"), "ready", WORKER_SILENT_AFTER, now)
    return checks


def _fresh(row: object, state: str, within: timedelta, now: datetime) -> Check:
    if row is None:
        return Check(False, "never started")
    if row.state != state:  # type: ignore[attr-defined]
        return Check(False, f"{row.state}: {row.detail}"[:200])  # type: ignore[attr-defined]
    age = now - as_utc(row.updated_at)  # type: ignore[attr-defined, operator]
    if age > within:
        return Check(False, f"silent for {age.total_seconds():.0f} s")
    return Check(True, f"{state} {age.total_seconds():.0f} s ago")

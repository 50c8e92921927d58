"""Open311 GET requests: every filter (status, service_code, start_date, end_date) is
applied in the database before the 1,000-row limit, so a busy quarter of closed
requests cannot hide the open ones; a bad filter value is a 400 naming the field and
the value, never a 500. On both databases, through the real HTTP app."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import insert

from pingan.store import Store
from pingan.store.schema import incidents, reports
from playbooks.registry import PlaybookRegistry
from playbooks.snapshot import snapshot_of
from tests.conftest import NOW
from tests.integration.http_app import with_client

CLOSED, OPEN = 1500, 3
SEARCH = "/open311/v2/requests.json"


def _incident(playbook: Any, status: str, at: Any) -> dict[str, Any]:
    return {
        "category": "fallen_tree",
        "status": status,
        "level": "routine",
        "scope": "site",
        "district": "yuanhui",
        "playbook_id": playbook.id,
        "playbook_version": playbook.version,
        "playbook_snapshot": snapshot_of(playbook),
        "lat": 33.57,
        "lon": 114.01,
        "opened_at": at,
        "updated_at": at,
        "resolved_at": at if status == "resolved" else None,
    }


def _report(n: int, service_code: str, incident_id: int | None, at: Any) -> dict[str, Any]:
    return {
        "received_at": at,
        "source": "open311",
        "service_code": service_code,
        "lat": 33.57,
        "lon": 114.01,
        "description": f"第{n}号报告",
        "contact": {},
        "attributes": {},
        "incident_id": incident_id,
    }


@pytest.fixture
def busy_quarter(store: Store, registry: PlaybookRegistry) -> dict[str, Any]:
    """1,500 closed requests, then 3 open ones that came in *before* them: one with no
    incident yet, one dispatched, one in progress; ids newest-first would put all
    1,500 closed ones ahead of them."""
    playbook = registry.index.playbooks["fallen-trees"]
    day = NOW - timedelta(days=10)
    with store.transaction() as conn:
        dispatched, in_progress, resolved = (
            conn.execute(
                insert(incidents).values(_incident(playbook, s, day))
            ).inserted_primary_key[0]
            for s in ("dispatched", "in_progress", "resolved")
        )
        opened = [
            conn.execute(
                insert(reports).values(_report(n, "fallen_tree", i, day))
            ).inserted_primary_key[0]
            for n, i in enumerate((None, dispatched, in_progress))
        ]
        conn.execute(
            insert(reports),
            [
                _report(
                    n, "manhole" if n % 2 else "fallen_tree", resolved, day + timedelta(minutes=n)
                )
                for n in range(CLOSED)
            ],
        )
    return {"open": sorted(str(i) for i in opened)}


def search(store: Store, tmp_path: Path, *queries: dict[str, str]) -> list[tuple[int, Any]]:
    async def go(client: TestClient[Any, Any]) -> list[tuple[int, Any]]:
        out = []
        for params in queries:
            reply = await client.get(SEARCH, params={"end_date": NOW.isoformat(), **params})
            out.append((reply.status, await reply.json()))
        return out

    return with_client(store, tmp_path, go)


def test_open_requests_are_found_behind_1500_closed_ones(
    store: Store, busy_quarter: dict[str, Any], tmp_path: Path
) -> None:
    replies = search(
        store,
        tmp_path,
        {"status": "open"},
        {"status": "closed"},
        {"status": "open,closed"},
        {"status": "open", "service_code": "fallen_tree,streetlight"},
        {"status": "open", "service_code": "manhole"},
    )
    assert [status for status, _ in replies] == [200] * 5
    opened, closed, both, open_trees, open_manholes = (body for _, body in replies)
    assert sorted(r["service_request_id"] for r in opened) == busy_quarter["open"]
    assert {r["status"] for r in opened} == {"open"}
    assert len(closed) == 1000 and {r["status"] for r in closed} == {"closed"}  # the limit
    assert len(both) == 1000 and {r["status"] for r in both} == {"closed"}  # newest first
    assert sorted(r["service_request_id"] for r in open_trees) == busy_quarter["open"]
    assert open_manholes == []


def test_dates_are_applied_before_the_limit(
    store: Store, busy_quarter: dict[str, Any], tmp_path: Path
) -> None:
    day = NOW - timedelta(days=10)
    [(status, early)] = search(
        store,
        tmp_path,
        {
            "start_date": day.isoformat(),
            "end_date": (day + timedelta(minutes=9)).isoformat(),
            "service_code": "manhole",
        },
    )
    # the 3 open ones and closed ones 0..9 came in then; the odd closed ones are manholes
    assert status == 200 and len(early) == 5
    assert {r["service_code"] for r in early} == {"manhole"}


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"status": "opened"}, "status: 'opened' is not a request status"),
        ({"status": "open,CLOSED"}, "status: 'CLOSED' is not a request status"),
        ({"service_code": "fallen_tree,pothole"}, "service_code: 'pothole' is not a service code"),
        ({"start_date": "yesterday"}, "start_date: 'yesterday' is not an ISO 8601 time"),
        ({"end_date": "2026-13-01T00:00:00Z"}, "end_date: '2026-13-01T00:00:00Z' is not an ISO"),
        ({"end_date": "0001-01-01T00:00:00Z"}, "end_date: 0001-01-01T00:00:00+00:00 is outside"),
        (
            {"start_date": "2026-11-20T00:00:00Z", "end_date": "2026-11-01T00:00:00Z"},
            "start_date/end_date: 2026-11-20T00:00:00+00:00 is after 2026-11-01T00:00:00+00:00",
        ),
        (
            {"start_date": "2026-01-01T00:00:00Z", "end_date": "2026-12-01T00:00:00Z"},
            "start_date/end_date: 2026-01-01T00:00:00+00:00 to 2026-12-01T00:00:00+00:00 spans "
            "334 days; a range of at most 90 days",
        ),
        ({"service_request_id": "1,x"}, "service_request_id: "),
    ],
)
def test_bad_filter_values_are_a_400_naming_them(
    store: Store, tmp_path: Path, params: dict[str, str], says: str
) -> None:
    [(status, body)] = search(store, tmp_path, params)
    assert status == 400 and body[0]["code"] == 400
    assert body[0]["description"].startswith(says), body

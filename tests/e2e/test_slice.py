"""The walking skeleton on the real embedded stack: a fallen-tree report becomes a
dispatched, acknowledged, resolved incident, driven over HTTP only."""

from __future__ import annotations

import json
import re
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from pingan.store.schema import local_messages, reports
from tests.conftest import ROSTER
from tests.e2e.harness import API_TOKEN, OPEN311_KEY, Stack, processes_matching, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = Stack(tmp_path_factory.mktemp("slice"), {"PINGAN_ROSTER_FILE": str(ROSTER)})
    yield running
    running.stop()


def _report_count(stack: Stack) -> int:
    with stack.store.read() as conn:
        return conn.execute(select(func.count()).select_from(reports)).scalar_one()


def test_report_to_resolved_incident(stack: Stack) -> None:
    reply = stack.report(
        lat=33.5712, long=114.0153, description="人民路一棵大树倒了", phone="+8613800138000"
    )
    assert reply.status_code == 200, reply.text
    [created] = reply.json()
    request_id = created["service_request_id"]

    def dispatched() -> dict | None:
        for summary in stack.incidents():
            detail = stack.incident(summary["id"])
            if detail["status"] == "dispatched" and any(
                r["service_request_id"] == request_id for r in detail["reports"]
            ):
                return detail
        return None

    incident = wait_for(dispatched, what="incident dispatched")
    assert incident["category"] == "fallen_tree"
    assert incident["playbook"] == {"id": "fallen-trees", "version": 1}
    assert incident["reports"][0]["contact"]["phone"] == "+86138****8000"
    [assignment] = incident["assignments"]
    assert assignment["crew"]["id"] == "tree-near" and assignment["state"] == "assigned"
    assert [h["to"] for h in incident["history"]] == ["open", "dispatched"]

    def messages() -> list:
        with stack.store.read() as conn:
            return conn.execute(
                select(local_messages).where(local_messages.c.recipient == "+8610000000101")
            ).all()

    [message] = wait_for(messages, what="crew notified")
    assert message.recipient == "+8610000000101"
    assert f"任务{assignment['id']}" in message.body

    done_early = stack.http.post(f"/api/assignments/{assignment['id']}/done", headers=stack.auth)
    assert done_early.status_code == 409
    assert "before the assignment is acknowledged" in done_early.json()["error"]

    ack = stack.http.post(f"/api/assignments/{assignment['id']}/ack", headers=stack.auth)
    assert ack.json() == {
        "id": assignment["id"],
        "incident_id": incident["id"],
        "state": "acknowledged",
    }
    done = stack.http.post(f"/api/assignments/{assignment['id']}/done", headers=stack.auth)
    assert done.status_code == 200 and done.json()["state"] == "done"

    resolved = wait_for(
        lambda: (d := stack.incident(incident["id"]))["status"] == "resolved" and d,
        what="incident resolved",
    )
    # Status follows the assignments as they are when each crew event is applied, so a
    # quick ack-then-done may skip 'in_progress'; the assignment keeps both times.
    steps = [h["to"] for h in resolved["history"]]
    assert steps[:2] == ["open", "dispatched"] and steps[-1] == "resolved"
    [finished] = resolved["assignments"]
    assert finished["state"] == "done"
    assert finished["acknowledged_at"] <= finished["done_at"]
    [status] = stack.http.get(f"/open311/v2/requests/{request_id}.json").json()
    assert status["status"] == "closed" and status["service_code"] == "fallen_tree"


def test_json_report_is_accepted(stack: Stack) -> None:
    body = {
        "api_key": OPEN311_KEY,
        "service_code": "fallen_tree",
        "address_string": "召陵区 滨河路",
        "description": "树枝断了",
    }
    reply = stack.http.post("/open311/v2/requests.json", json=body)
    assert reply.status_code == 200, reply.text
    assert reply.json()[0]["service_request_id"].isdigit()


def _api_routes() -> list[tuple[str, str]]:
    """Every /api/ route the HTTP app registers, with ids filled in."""
    from pingan.http.app import build_http_app

    app = build_http_app(None)  # type: ignore[arg-type]  # routes only, never served
    routes = set()
    for route in app.router.routes():
        path = route.resource.canonical if route.resource else ""
        if path.startswith("/api/") and route.method != "HEAD":
            routes.add((route.method, path.replace("{id}", "1")))
    return sorted(routes)


API_ROUTES = _api_routes()


def test_the_route_list_is_complete() -> None:
    assert len(API_ROUTES) >= 8


BAD_REQUESTS = [
    (
        "missing location",
        {"data": {"api_key": OPEN311_KEY, "service_code": "fallen_tree"}},
        400,
        "location: lat/long or address_string is required",
    ),
    (
        "unknown service",
        {"data": {"api_key": OPEN311_KEY, "service_code": "ufo", "lat": "33.5", "long": "114"}},
        400,
        "service_code: unknown service 'ufo'",
    ),
    (
        "bad JSON",
        {
            "content": b'{"service_code": "fallen_tree",',
            "headers": {"Content-Type": "application/json"},
        },
        400,
        "body: not valid JSON (line 1, column 32",
    ),
    ("JSON not an object", {"json": ["fallen_tree"]}, 400, "expected a JSON object"),
    (
        "wrong api_key",
        {"data": {"api_key": "nope", "service_code": "fallen_tree", "lat": "33.5", "long": "114"}},
        403,
        "api_key: not valid",
    ),
    (
        "missing api_key",
        {"data": {"service_code": "fallen_tree", "lat": "33.5", "long": "114"}},
        403,
        "api_key: required",
    ),
    (
        "absurd latitude",
        {
            "data": {
                "api_key": OPEN311_KEY,
                "service_code": "fallen_tree",
                "lat": "333",
                "long": "114",
            }
        },
        400,
        "lat: 333.0 is outside",
    ),
    (
        "1 MB description",
        {
            "data": {
                "api_key": OPEN311_KEY,
                "service_code": "fallen_tree",
                "lat": "33.5",
                "long": "114",
                "description": "树" * 350_000,
            }
        },
        413,
        "body: larger than 64 KB",
    ),
    (
        "invalid UTF-8",
        {
            "content": b"service_code=fallen_tree&lat=33.5&long=114&description=\xff",
            "headers": {"Content-Type": "application/x-www-form-urlencoded"},
        },
        400,
        "not valid UTF-8",
    ),
]


@pytest.mark.parametrize(
    ("case", "request_kwargs", "status", "message"), BAD_REQUESTS, ids=[c[0] for c in BAD_REQUESTS]
)
def test_bad_reports_get_open311_errors_and_store_nothing(
    stack: Stack, case: str, request_kwargs: dict, status: int, message: str
) -> None:
    before = _report_count(stack)
    reply = stack.http.post("/open311/v2/requests.json", **request_kwargs)
    assert reply.status_code == status, reply.text
    [error] = reply.json()
    assert error["code"] == status
    assert message in error["description"]
    assert _report_count(stack) == before


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {API_TOKEN}"}]
)
@pytest.mark.parametrize(("method", "path"), API_ROUTES)
def test_api_refuses_without_a_valid_token(
    stack: Stack, method: str, path: str, headers: dict
) -> None:
    reply = stack.http.request(method, path, headers=headers)
    assert reply.status_code == 401
    assert reply.headers["WWW-Authenticate"].startswith("Bearer")
    assert json.loads(reply.text) == {"error": "missing or invalid bearer token"}


def test_dispatcher_resolves_an_incident(stack: Stack) -> None:
    stack.report(lat=33.5500, long=114.0300, description="树倒了")
    incident = wait_for(
        lambda: [i for i in stack.incidents() if i["location"]["lat"] == 33.55], what="incident"
    )[0]
    path = f"/api/incidents/{incident['id']}/resolve"
    assert stack.http.post(path, json={}, headers=stack.auth).status_code == 400
    reply = stack.http.post(path, json={"reason": "树已被居民移开"}, headers=stack.auth)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["status"] == "resolved"
    assert body["history"][-1]["reason"] == "resolved by dispatcher: 树已被居民移开"
    assert {a["state"] for a in body["assignments"]} <= {"cancelled"}
    again = stack.http.post(path, json={"reason": "again"}, headers=stack.auth)
    assert again.status_code == 409 and "already resolved" in again.json()["error"]


def test_unknown_ids_are_404_not_500(stack: Stack) -> None:
    assert stack.http.get("/api/incidents/99999", headers=stack.auth).status_code == 404
    assert stack.http.get("/api/incidents/abc", headers=stack.auth).status_code == 404
    assert stack.http.post("/api/assignments/99999/ack", headers=stack.auth).status_code == 404
    assert stack.http.get("/open311/v2/requests/99999.json").json()[0]["code"] == 404


def test_ctrl_c_stops_everything(tmp_path: Path) -> None:
    running = Stack(tmp_path)
    broker_listener = f"tcp://{running.broker_bootstrap}"
    assert processes_matching(broker_listener), "the embedded broker should be running"
    worker_pid = _worker_pid(running)
    assert running.stop(signal.SIGINT) == 0
    assert processes_matching(broker_listener) == []
    assert not Path(f"/proc/{worker_pid}").exists()
    assert "stopped exit_code=0" in running.output()


def test_killed_supervisor_takes_its_children_with_it(tmp_path: Path) -> None:
    running = Stack(tmp_path)
    broker_listener = f"tcp://{running.broker_bootstrap}"
    worker_pid = _worker_pid(running)
    running.stop(signal.SIGKILL)
    wait_for(lambda: not processes_matching(broker_listener), timeout=10, what="broker gone")
    wait_for(lambda: not Path(f"/proc/{worker_pid}").exists(), timeout=30, what="worker gone")


def _worker_pid(stack: Stack) -> int:
    from pingan.store.schema import components

    with stack.store.read() as conn:
        return conn.execute(
            select(components.c.pid).where(components.c.name == "worker")
        ).scalar_one()


def test_logs_are_logfmt_and_mask_the_caller(stack: Stack) -> None:
    """Every process of the stack logs one logfmt line per event (the Faust worker too,
    into worker.log), and the caller's number never appears in full."""
    reply = stack.report(
        lat=33.5801, long=114.0302, description="公园门口树倒了", phone="+8613900139000"
    )
    assert reply.status_code == 200, reply.text
    wait_for(
        lambda: "to=+86139****9000" in (stack.data_dir / "worker.log").read_text(),
        what="the citizen's receipt logged by the worker",
    )
    run_log = stack.output().splitlines()
    worker_log = (stack.data_dir / "worker.log").read_text().splitlines()
    assert not [line for line in run_log + worker_log if "13900139000" in line]
    assert any("phone=+86139****9000" in line for line in run_log)
    loggers = {
        line.split(" logger=")[1].split(" ")[0] for line in worker_log if line.startswith("ts=")
    }
    assert {"faust.worker", "pingan.streams", "pingan.alerts.local_outbox"} <= loggers
    not_logfmt = [
        line
        for line in worker_log
        if not re.fullmatch(r'ts=\S+Z level=[a-z]+ logger=\S+ msg=".*"', line)
    ]
    assert not_logfmt == [], not_logfmt[:10]
    supervisor_lines = [line for line in run_log if line.startswith("ts=")]
    assert supervisor_lines and all(' msg="' in line for line in supervisor_lines)

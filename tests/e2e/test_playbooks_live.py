"""Playbooks on the running system: hot reload (valid edits apply to new incidents,
open ones keep their snapshot, invalid edits change nothing and are shown), and the
warning lifecycle driving one district incident through open -> upgrade -> resolve."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import PLAYBOOKS_DIR, ROSTER
from tests.e2e.harness import Stack, wait_for

pytestmark = pytest.mark.e2e


def _playbooks(stack: Stack) -> dict:
    return stack.http.get("/api/playbooks", headers=stack.auth).json()


def _worker_view(stack: Stack) -> dict | None:
    return _playbooks(stack)["worker"]


def test_hot_reload(tmp_path: Path) -> None:
    books = tmp_path / "playbooks"
    shutil.copytree(PLAYBOOKS_DIR, books, ignore=shutil.ignore_patterns("examples"))
    stack = Stack(
        tmp_path / "data", {"PINGAN_PLAYBOOKS_DIR": str(books), "PINGAN_ROSTER_FILE": str(ROSTER)}
    )
    try:
        first = stack.report(lat=33.5712, long=114.0153).json()[0]["service_request_id"]
        wait_for(lambda: stack.incidents(), what="first incident")

        trees = books / "fallen-trees.yaml"
        edited = (
            trees.read_text()
            .replace("version: 1", "version: 2")
            .replace(
                "        ack_within_min: 10\n        arrive_within_min: 30",
                "        ack_within_min: 7\n        arrive_within_min: 30",
            )
        )
        trees.write_text(edited)
        wait_for(
            lambda: "fallen-trees v2" in (_worker_view(stack) or {}).get("detail", ""),
            what="worker reloaded v2",
        )
        wait_for(
            lambda: any(
                p["id"] == "fallen-trees" and p["version"] == 2
                for p in _playbooks(stack)["playbooks"]
            ),
            what="http reloaded v2",
        )

        stack.report(lat=33.6000, long=114.0600)  # another tree, 5 km away
        second = wait_for(
            lambda: [i for i in stack.incidents() if i["playbook"]["version"] == 2],
            what="v2 incident",
        )[0]
        detail = wait_for(
            lambda: (d := stack.incident(second["id"]))["assignments"] and d, what="v2 dispatch"
        )
        [assignment] = detail["assignments"]
        from datetime import datetime

        due = datetime.fromisoformat(assignment["ack_due_at"])
        created = datetime.fromisoformat(assignment["created_at"])
        assert (due - created).total_seconds() == 7 * 60
        old = next(i for i in stack.incidents() if i["id"] != second["id"])
        assert old["playbook"] == {"id": "fallen-trees", "version": 1}
        assert stack.incident(old["id"])["reports"][0]["service_request_id"] == first

        trees.write_text(edited.replace("  routine:\n    dispatch:", "  routine:\n    dispach:"))
        view = wait_for(
            lambda: (w := _worker_view(stack)) and w["state"] == "invalid" and w,
            what="worker reports the invalid edit",
        )
        assert "fallen-trees.yaml:" in view["detail"]
        assert "levels.routine.dispach: unknown key; did you mean 'dispatch'?" in view["detail"]
        http_view = wait_for(
            lambda: (p := _playbooks(stack))["status"] == "invalid" and p,
            what="http reports the invalid edit",
        )
        assert "did you mean 'dispatch'" in http_view["error"]
        # The running version stays in force.
        stack.report(lat=33.5500, long=114.0200)
        third = wait_for(
            lambda: [i for i in stack.incidents() if i["id"] > second["id"]], what="third incident"
        )[0]
        assert third["playbook"] == {"id": "fallen-trees", "version": 2}
    finally:
        assert stack.stop() == 0


def test_warning_lifecycle_one_district_incident(tmp_path: Path) -> None:
    stack = Stack(tmp_path, {"PINGAN_ROSTER_FILE": str(ROSTER)})
    try:

        def post(body: dict):  # type: ignore[no-untyped-def]
            return stack.http.post("/api/warnings", json=body, headers=stack.auth)

        alert = {
            "id": "LH-BS01",
            "msg_type": "Alert",
            "event": "暴雪",
            "level": "黄色",
            "districts": ["源汇区"],
            "expires": "2099-01-01T00:00:00+08:00",
            "headline": "漯河市气象台发布暴雪黄色预警信号",
        }
        assert post(alert).status_code == 202
        again = post(alert)
        assert again.status_code == 200 and again.json()["accepted"] is False

        def snow() -> list[dict]:
            return [i for i in stack.incidents() if i["playbook"]["id"] == "snow-removal"]

        [incident] = wait_for(
            lambda: [i for i in snow() if i["status"] == "dispatched"],
            what="snow incident dispatched",
        )
        assert (incident["level"], incident["scope"], incident["district"]) == (
            "yellow",
            "district",
            "yuanhui",
        )
        assert len(stack.incident(incident["id"])["assignments"]) == 2

        update = {
            **alert,
            "id": "LH-BS02",
            "msg_type": "Update",
            "level": "orange",
            "references": ["LH-BS01"],
        }
        assert post(update).status_code == 202
        wait_for(lambda: stack.incident(incident["id"])["level"] == "orange", what="upgrade")
        detail = wait_for(
            lambda: len((d := stack.incident(incident["id"]))["assignments"]) == 3 and d,
            what="third crew for orange",
        )
        assert len(snow()) == 1, "an upgrade must not open a second incident"
        assert any("level yellow → orange" in h["reason"] for h in detail["history"])
        in_force = stack.http.get("/api/warnings", headers=stack.auth).json()["warnings"]
        assert [(w["id"], w["level"]) for w in in_force] == [("LH-BS02", "orange")]

        stack.http.post(
            f"/api/assignments/{detail['assignments'][0]['id']}/ack", headers=stack.auth
        )
        cancel = {
            **alert,
            "id": "LH-BS03",
            "msg_type": "Cancel",
            "level": "orange",
            "references": ["LH-BS02"],
        }
        assert post(cancel).status_code == 202
        done = wait_for(
            lambda: (d := stack.incident(incident["id"]))["status"] == "resolved" and d,
            what="resolved on cancel",
        )
        assert {a["state"] for a in done["assignments"]} == {"cancelled"}
        assert stack.http.get("/api/warnings", headers=stack.auth).json()["warnings"] == []

        bad = post({**alert, "id": "X", "districts": ["火星区"]})
        assert (
            bad.status_code == 400 and "districts: unknown district '火星区'" in bad.json()["error"]
        )
        assert post({**alert, "msg_type": "Update"}).json()["error"].startswith("references:")
    finally:
        assert stack.stop() == 0

"""What the console reads to speak one language at a time: GET /api/vocabulary (every
word for a code and every choice a form offers), and an incident, its board row and
its trail with `labels` in each language, whose Chinese names no code (a login name is
the one thing shown as written, apart from the words)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select

from pingan.actions import apply_crew_action
from pingan.core import topics
from pingan.core.assignments import CrewAction
from pingan.intake.accept import accept_report
from pingan.store import Store
from pingan.store.schema import citizen_warnings
from streams import handlers
from tests.conftest import NOW
from tests.integration.http_app import BEARER, with_client
from tests.integration.test_handlers import draft, events

LATIN_WORD = re.compile(r"[A-Za-z]{2,}")


def chinese(label: dict[str, Any] | None) -> str:
    return (label or {}).get("zh", "")


def test_the_vocabulary_has_every_choice_and_word(staffed_store: Store, tmp_path: Path) -> None:
    async def go(client: TestClient[Any, Any]) -> dict[str, Any]:
        reply = await client.get("/api/vocabulary", headers=BEARER)
        assert reply.status == 200
        return await reply.json()

    words = with_client(staffed_store, tmp_path, go)
    codes = {key: [c["code"] for c in words[key]] for key in ("services", "events", "levels")}
    assert codes["services"] == [
        "fallen_tree",
        "waterlogging",
        "snow_ice",
        "manhole",
        "streetlight",
    ]  # those a playbook handles
    assert codes["events"] == ["blizzard", "rainstorm", "gale", "road_icing", "cold_wave"]
    assert [c["code"] for c in words["levels"] if c["signal"]] == [
        "blue",
        "yellow",
        "orange",
        "red",
    ]
    assert [c["code"] for c in words["channels"]] == ["sms", "wechat"]
    assert {d["code"]: d["kind"] for d in words["districts"]}["jingkai"] == "zone"
    assert words["statuses"]["assigned"] == {"zh": "待接单", "en": "assigned"}
    assert words["trail"]["crew.assignment.queued"]["zh"] == "派单短信待发"
    for key in ("services", "events", "levels", "districts", "channels"):
        for choice in words[key]:
            assert choice["zh"] and choice["en"] and not LATIN_WORD.search(choice["zh"]), choice
    for key in ("statuses", "trail", "actors", "message_kinds", "message_statuses", "roles"):
        for code, label in words[key].items():
            assert not LATIN_WORD.search(label["zh"]), (key, code)


def test_an_incident_its_row_and_its_trail_in_each_language(
    staffed_store: Store, index, tmp_path: Path
) -> None:
    accept_report(staffed_store, draft(text="人民路大树倒了"), "open311", "test", NOW)
    handlers.handle_report_accepted(
        staffed_store, index, events(staffed_store, topics.REPORTS)[0], NOW
    )
    handlers.handle_incident_event(staffed_store, events(staffed_store, topics.INCIDENTS)[0], NOW)
    apply_crew_action(staffed_store, 1, CrewAction.ACK, "crew:tree-near via link", NOW)
    apply_crew_action(staffed_store, 1, CrewAction.EN_ROUTE, "alice for the crew", NOW)

    async def go(client: TestClient[Any, Any]) -> tuple[Any, ...]:
        got = [
            await (await client.get(p, headers=BEARER)).json()
            for p in ("/api/incidents/1", "/api/board", "/api/incidents/1/audit", "/api/crews")
        ]
        return tuple(got)

    incident, board, trail, crews = with_client(staffed_store, tmp_path, go)
    [task] = incident["assignments"]
    assert task["labels"]["crew"] == {"zh": "园林抢险近班", "en": "Tree crew near"}
    assert task["labels"]["state"] == {"zh": "在途", "en": "en route"}
    assert task["labels"]["why"]["zh"].startswith("负责该路段（人民路）：距驻地0.1公里")
    assert task["labels"]["why"]["en"].startswith("owns road segment yuanhui-01 (人民路): 0.1 km")
    assert task["why"].startswith("owns road segment yuanhui-01: 0.1 km from base")  # as before
    assert task["reason"]["rule"] == "segment_owner"
    assert incident["labels"]["playbook"]["zh"] == "倒伏树木与断枝清理"
    [row] = board["incidents"]
    assert row["assignments"][0]["labels"]["crew"]["zh"] == "园林抢险近班"
    assert row["assignments"][0]["labels"]["why"] == task["labels"]["why"]

    shown = [
        (e["action"], chinese(e["labels"]["action"]), e["labels"]["actor"], e["labels"]["task"])
        for e in trail["audit"]
    ]
    assert (
        "incident.opened",
        "立案",
        {"person": None, "zh": "系统", "en": "system"},
        None,
    ) in shown
    acknowledged = next(s for s in shown if s[0] == "assignment.acknowledged")
    assert acknowledged[1:] == (
        "班组接单",
        {"person": None, "zh": "园林抢险近班（手机链接）", "en": "Tree crew near (phone link)"},
        {"zh": "任务1·园林抢险近班", "en": "task 1 · Tree crew near"},
    )
    en_route = next(s for s in shown if s[0] == "assignment.en_route")
    assert en_route[2] == {"person": "alice", "zh": "代班组操作", "en": "for the crew"}
    for entry in trail["audit"]:
        labels = entry["labels"]
        words = [chinese(labels[k]) for k in ("action", "actor", "task", "note")]
        assert not [w for w in words if LATIN_WORD.search(w)], entry
        assert labels["action"]["zh"] != "其他记录", entry["action"]  # every one has words
    near = next(c for c in crews["crews"] if c["id"] == "tree-near")
    assert near["labels"] == {
        "name": {"zh": "园林抢险近班", "en": "Tree crew near"},
        "skills": [{"zh": "园林抢险", "en": "tree"}],
    }


def test_a_draft_goes_by_the_channels_chosen(staffed_store: Store, tmp_path: Path) -> None:
    """The console offers the vocabulary's channels; the server keeps the one chosen
    and refuses one it does not have, naming the field and the choices."""
    body = {"event": "blizzard", "level": "yellow", "districts": ["yuanhui"]}
    body |= {"template": "blizzard-yellow"}

    async def go(client: TestClient[Any, Any]) -> tuple[Any, ...]:
        wechat = await client.post(
            "/api/citizen-warnings", headers=BEARER, json=body | {"channels": ["wechat"]}
        )
        fax = await client.post(
            "/api/citizen-warnings", headers=BEARER, json=body | {"channels": ["fax"]}
        )
        return wechat.status, await wechat.json(), fax.status, await fax.json()

    status, created, refused, error = with_client(staffed_store, tmp_path, go)
    assert status == 201, created
    with staffed_store.read() as conn:
        stored = conn.execute(
            select(citizen_warnings.c.channels).where(citizen_warnings.c.id == created["id"])
        ).scalar_one()
    assert stored == ["wechat"]
    assert (refused, error) == (400, {"error": "channels: one or more of sms, wechat"})

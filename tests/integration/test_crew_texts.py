"""The task SMS a crew leader gets, through the real path (incident and assignment in
the database, the notify handler, the local outbox), for every playbook, level and
crew skill: the exact text is pinned in tests/data/crew-texts.yaml, and none of them
carries an English word or raw coordinates.

After an intended change of wording: PINGAN_WRITE_CREW_TEXTS=1 pytest this file, then
read the diff of the YAML as a crew leader would."""

from __future__ import annotations

import asyncio
import os
import re
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from alerts.channels.local_outbox import LocalOutboxChannel
from alerts.pipeline import Sender
from pingan.actions import sync_roster
from pingan.core import topics
from pingan.core.events import WarningSignal
from pingan.crews import load_roster
from pingan.intake.accept import accept_warning
from pingan.settings import PACKAGE_ROOT
from pingan.store import Store
from pingan.store.assignments import insert_assignment
from pingan.store.incidents import insert_incident
from pingan.store.schema import local_messages
from playbooks.index import PlaybookIndex
from playbooks.registry import PlaybookRegistry
from streams import handlers
from tests.conftest import NOW, PLAYBOOKS_DIR
from tests.integration.test_handlers import events

GOLDEN = Path(__file__).parent.parent / "data" / "crew-texts.yaml"
DEMO_ROSTER = PACKAGE_ROOT / "data" / "roster.yaml"
# Two or more Latin letters in a row: an English word or a code ("blizzard").
ENGLISH = re.compile(r"[A-Za-z]{2,}")
COORDINATES = re.compile(r"\d+\.\d{3,}")


@pytest.fixture
def demo_store(tmp_path: Path) -> Store:
    store = Store(f"sqlite:///{tmp_path / 'crew-texts.db'}")
    store.create_schema()
    sync_roster(store, load_roster(DEMO_ROSTER), NOW)
    return store


def _sent(store: Store, assignment_id: int) -> str:
    event = {"event_id": f"tell-{assignment_id}", "type": "crew.assignment"}
    asyncio.run(
        handlers.handle_notification(
            store,
            Sender(store, {"sms": LocalOutboxChannel(store)}),
            event | {"assignment_id": assignment_id},
            NOW,
        )
    )
    with store.read() as conn:
        return conn.execute(
            select(local_messages.c.body).where(
                local_messages.c.idempotency_key == f"assignment:{assignment_id}"
            )
        ).scalar_one()


def _as_blocks(texts: dict[str, str]) -> str:
    """The pinned texts as YAML literal blocks: each reads as the SMS it is."""

    class Dumper(yaml.SafeDumper):
        pass

    def block(dumper: yaml.SafeDumper, text: str) -> yaml.Node:
        return dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|")

    Dumper.add_representer(str, block)
    return yaml.dump(texts, Dumper=Dumper, allow_unicode=True, sort_keys=True, width=200)


def _every_task() -> list[tuple[str, str, str, str]]:
    """(playbook, level, skill, scope) for every dispatch a playbook can make: a
    district-wide incident where the action is per district, else one at a site."""
    found = []
    for playbook in PlaybookRegistry(PLAYBOOKS_DIR).index.playbooks.values():
        for level, actions in playbook.levels.items():
            for action in actions.dispatch:
                scope = "district" if action.per == "district" else "site"
                found.append((playbook.id, level, action.skill, scope))
    return found


def _text_for(
    store: Store, index: PlaybookIndex, playbook_id: str, level: str, skill: str, scope: str
) -> str:
    playbook = index.playbooks[playbook_id]
    district_wide = scope == "district"
    # A crew of Yuanhui with the skill (and road segments, where crews own them).
    crews = load_roster(DEMO_ROSTER).crews
    crew = next(
        (c for c in crews if skill in c.skills and c.segments and "yuanhui" in c.id),
        next(c for c in crews if skill in c.skills),
    )
    with store.transaction() as conn:
        incident_id = insert_incident(
            conn,
            category=_category(playbook, level),
            level=level,
            scope=scope,
            district="yuanhui",
            playbook=playbook,
            lat=None if district_wide else 33.5713,  # 人民路
            lon=None if district_wide else 114.0152,
            now=NOW,
        )
        assignment_id = insert_assignment(
            conn, incident_id, crew.id, skill, "test", level, NOW + timedelta(minutes=10), NOW
        )
    return _sent(store, assignment_id)


def _category(playbook, level: str) -> str:  # type: ignore[no-untyped-def]
    """What the matcher names an incident of this playbook: the warning's event for a
    colour level opened by a warning, else the report category."""
    for trigger in playbook.triggers:
        if trigger.kind == "warning" and level in ("blue", "yellow", "orange", "red"):
            return trigger.event
    for trigger in playbook.triggers:
        if trigger.kind == "report":
            return trigger.category
    return playbook.triggers[0].metric


@pytest.mark.parametrize(("playbook_id", "level", "skill", "scope"), _every_task())
def test_every_crew_text_is_exactly_as_pinned_and_all_in_words(
    demo_store: Store, index: PlaybookIndex, playbook_id: str, level: str, skill: str, scope: str
) -> None:
    text = _text_for(demo_store, index, playbook_id, level, skill, scope)
    key = f"{playbook_id}/{level}/{skill}"
    if os.environ.get("PINGAN_WRITE_CREW_TEXTS"):
        pinned = yaml.safe_load(GOLDEN.read_text(encoding="utf-8")) if GOLDEN.exists() else {}
        pinned[key] = text
        GOLDEN.write_text(_as_blocks(pinned), encoding="utf-8")
    pinned = yaml.safe_load(GOLDEN.read_text(encoding="utf-8"))
    assert text == pinned[key]
    assert ENGLISH.findall(text) == [], text
    assert COORDINATES.findall(text) == [], text


def test_the_snow_crew_reads_its_own_roads_bridges_first(
    demo_store: Store, index: PlaybookIndex
) -> None:
    """A 暴雪橙色 warning over Yuanhui opens a district-wide snow incident; the crew that
    owns 解放路, 受降路 and 沙河大桥 reads the event and level in Chinese and its own
    segments by name, the bridge first, and no raw coordinates."""
    blizzard = WarningSignal(
        "B1", "blizzard", "orange", "Alert", ("yuanhui",), NOW, NOW + timedelta(hours=6)
    )
    accept_warning(demo_store, blizzard, "漯河市气象台发布暴雪橙色预警", "test", NOW)
    for event in events(demo_store, topics.WEATHER):
        handlers.handle_weather_event(demo_store, index, event, NOW)
    for event in events(demo_store, topics.INCIDENTS):
        handlers.handle_incident_event(demo_store, event, NOW)
    for event in events(demo_store, topics.NOTIFICATIONS):
        if event["type"] == "crew.assignment":
            asyncio.run(
                handlers.handle_notification(
                    demo_store,
                    Sender(demo_store, {"sms": LocalOutboxChannel(demo_store)}),
                    event,
                    NOW,
                )
            )
    with demo_store.read() as conn:
        bodies = conn.execute(select(local_messages.c.recipient, local_messages.c.body)).all()
    crew_2 = next(body for phone, body in bodies if phone == "+8610000000106")  # 赵敏
    number = crew_2.split("：", 1)[0].removeprefix("【平安派单】任务")
    assert crew_2 == (
        f"【平安派单】任务{number}：暴雪橙色预警，源汇区全区。\n"
        "请10分钟内确认。\n"
        "负责路段（按先后）：沙河大桥（桥梁）、解放路下穿通道（下穿通道）、"
        "受降路及火车站周边小巷（背街小巷）\n"
        "优先处置：桥梁、立交桥、涵洞、主干道、医院通道、学校门口\n"
        f"回复“{number} 1”接单，“{number} 2 原因”拒绝，“{number} 3”到场，“{number} 9”完成"
    )
    for _, body in bodies:
        assert ENGLISH.findall(body) == [] and COORDINATES.findall(body) == [], body

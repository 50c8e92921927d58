"""Every code the console shows has words in each language: the audit trail's actions
(read from the code itself, so an action added without words fails here), its actors,
and the vocabulary's other tables; the Chinese names no code."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from alerts.history import _KINDS
from alerts.ledger import PROGRESS
from pingan import users
from pingan.core.assignments import CrewAction
from pingan.labels import actor_label, trail_note
from pingan.settings import PROJECT_ROOT
from pingan.vocabulary import (
    ACTORS,
    AUDIT_ACTIONS,
    CHANNELS,
    COMPONENT_STATES,
    COMPONENTS,
    CREW_VIA,
    ERRORS,
    MESSAGE_KINDS,
    MESSAGE_STATUSES,
    ROLES,
    SKILLS,
    STATUSES,
    WARNING_CHANNELS,
    WARNING_STATUSES,
    AssignmentState,
    IncidentStatus,
    audit_label,
)

LATIN_WORD = re.compile(r"[A-Za-z]{2,}")
SOURCES = [
    p
    for folder in ("pingan", "alerts", "streams", "playbooks")
    for p in sorted((PROJECT_ROOT / folder).rglob("*.py"))
]
# The actions written from a value, and every value they take.
STATES = [s.value for s in AssignmentState]
MADE = {
    "f'assignment.{new.value}'": [f"assignment.{s}" for s in STATES],
    "f'assignment.{action.value}.refused'": [f"assignment.{a.value}.refused" for a in CrewAction],
    "f'incident.{new}'": [f"incident.{s.value}" for s in IncidentStatus],
    "f'warning.{signal.msg_type.lower()}'": ["warning.alert", "warning.update", "warning.cancel"],
    "f'citizen_warning.{msg_type.lower()}'": ["citizen_warning.update", "citizen_warning.cancel"],
    "f'{kind}.queued'": [
        f"{k}.queued"
        for k in ("crew.assignment", "crew.reminder", "staff.digest", "citizen.received")
    ]
    + ["citizen.resolved.queued"],
    "f\"crew.call.{(outcome.status if outcome else 'skipped')}\"": [
        f"crew.call.{s}" for s in ("sent", "already_sent", "failed", "retry", "skipped")
    ],
    "'subscriber.opted_out' if stop else 'subscriber.opted_in'": [
        "subscriber.opted_out",
        "subscriber.opted_in",
    ],
}


def audit_calls() -> list[tuple[Path, int, ast.expr, ast.expr]]:
    found = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "record_audit":
                found.append((path, node.lineno, node.args[2], node.args[3]))
    return found


def test_every_audited_action_has_words() -> None:
    calls = audit_calls()
    assert len(calls) > 40  # the walk found them
    missing = []
    for path, line, _, action in calls:
        if isinstance(action, ast.Constant):
            codes = [action.value]
        else:
            source = ast.unparse(action)
            assert source in MADE, f"{path}:{line}: list the actions {source} makes in MADE"
            codes = MADE[source]
        missing += [f"{path.name}:{line} {c}" for c in codes if c not in AUDIT_ACTIONS]
    assert missing == []


def test_every_named_actor_has_words() -> None:
    """An actor the code writes as a literal (not a person) is in ACTORS."""
    literal = {
        actor.value
        for _, _, actor, _ in audit_calls()
        if isinstance(actor, ast.Constant) and isinstance(actor.value, str)
    }
    literal |= {"system"}  # SYSTEM
    assert literal - set(ACTORS) == set()


TABLES = {
    "AUDIT_ACTIONS": AUDIT_ACTIONS,
    "ACTORS": ACTORS,
    "CREW_VIA": CREW_VIA,
    "CHANNELS": CHANNELS,
    "MESSAGE_KINDS": MESSAGE_KINDS,
    "MESSAGE_STATUSES": MESSAGE_STATUSES,
    "WARNING_STATUSES": WARNING_STATUSES,
    "ROLES": ROLES,
    "ERRORS": ERRORS,
    "COMPONENTS": COMPONENTS,
    "COMPONENT_STATES": COMPONENT_STATES,
    "SKILLS": SKILLS,
    "STATUSES": STATUSES,
}


@pytest.mark.parametrize("name", TABLES)
def test_the_chinese_of_every_table_names_no_code(name: str) -> None:
    latin = {code: zh for code, (zh, _) in TABLES[name].items() if LATIN_WORD.search(zh)}
    assert latin == {}


def test_the_tables_cover_what_the_system_has() -> None:
    assert set(MESSAGE_STATUSES) == set(PROGRESS)
    assert {kind for _, kind in _KINDS} | {"other"} == set(MESSAGE_KINDS)
    assert tuple(ROLES) == users.ROLES
    assert set(STATUSES) == {s.value for s in IncidentStatus} | set(STATES)
    assert set(WARNING_CHANNELS) <= set(CHANNELS)


def test_an_unknown_action_is_still_words() -> None:
    assert audit_label("incident.opened") == {"zh": "立案", "en": "incident opened"}
    assert audit_label("made.up") == {"zh": "其他记录", "en": "other"}


CREWS = {"tree-near": {"zh": "园林抢险近班", "en": "Tree crew near"}}


@pytest.mark.parametrize(
    ("actor", "shown"),
    [
        ("system", {"person": None, "zh": "系统", "en": "system"}),
        ("alice", {"person": "alice", "zh": "", "en": ""}),
        ("alice for the crew", {"person": "alice", "zh": "代班组操作", "en": "for the crew"}),
        (
            "crew:tree-near via link",
            {"person": None, "zh": "园林抢险近班（手机链接）", "en": "Tree crew near (phone link)"},
        ),
        ("crew:gone via sms", {"person": None, "zh": "gone（短信）", "en": "gone (SMS)"}),
        ("tree-near", {"person": None, "zh": "园林抢险近班", "en": "Tree crew near"}),
    ],
)
def test_who_did_it(actor: str, shown: dict) -> None:
    assert actor_label(actor, CREWS) == shown


@pytest.mark.parametrize(
    ("action", "detail", "note"),
    [
        (
            "incident.resolved",
            {"reason": "resolved by dispatcher: 已清理", "note": "已清理"},
            "已清理",
        ),
        ("incident.resolved", {"reason": "warning LH-1 cancelled"}, None),  # the system's
        ("incident.reopened", {"reason": "树又倒了"}, "树又倒了"),
        ("assignment.declined", {"from": "assigned", "note": "车坏了"}, "车坏了"),
        ("assignment.acknowledged", {"from": "assigned", "note": ""}, None),
        ("incident.upgraded", {"from": "yellow", "to": "orange", "reason": "x"}, "黄色→橙色"),
        ("incident.merged", {"merged": 7, "reports_moved": 2}, "并入事件7"),
        ("incident.split", {"new_incident": 9, "reports": [3]}, "拆出为事件9"),
        ("incident.opened", {"playbook": "fallen-trees"}, None),
    ],
)
def test_what_an_entry_adds(action: str, detail: dict, note: str | None) -> None:
    found = trail_note(action, detail)
    assert (found or {}).get("zh") == note

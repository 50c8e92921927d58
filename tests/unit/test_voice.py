"""An escalation call's pure parts, as tables: what is read out, what a key means,
the TwiML (escaped: a report's words cannot become markup), and the escalation step
that calls a silent crew leader before it passes the task on."""

from __future__ import annotations

from xml.etree import ElementTree

import pytest

from alerts.channels.base import Message, PermanentError
from alerts.channels.twilio_voice import TwilioVoiceChannel
from alerts.ledger import PROGRESS
from alerts.render import CrewTask, crew_call_text
from alerts.voice import (
    CALL_RECEIPTS,
    TWIML_MAX_CHARS,
    answer_url,
    answered_twiml,
    call_twiml,
    reprompt_twiml,
)
from pingan.core.assignments import CrewAction, call_answer
from pingan.core.escalation import CALL_ANSWER_MIN, EscalationDecision, escalation_step

URL = "https://pingan.example.cn/webhooks/twilio/voice/12/answer"


def test_what_a_site_task_call_says() -> None:
    task = CrewTask(
        assignment_id=12,
        category="fallen_tree",
        level="routine",
        place="人民路附近",
        ack_within_min=10,
        description="人民路一棵大树倒了。",
        checklist=("设置警示区域 Set up a cordon",),
        link="https://pingan.example.cn/c/abc",
    )
    assert crew_call_text(task) == (
        "平安派单。任务12，倒伏树木（一般），地点：人民路附近。您还没有确认。"
        "群众描述：人民路一棵大树倒了。接单请按1，拒绝请按2。"
    )


def test_a_district_wide_call_names_the_first_roads_bridges_first() -> None:
    task = CrewTask(
        assignment_id=7,
        category="blizzard",
        level="orange",
        place="源汇区全区",
        ack_within_min=10,
        segments=(
            ("黄河路", "main_road"),
            ("解放路", "main_road"),
            ("沙河大桥", "bridge"),
            ("小巷", "back_street"),
        ),
        targets=("bridge", "culvert", "main_road"),
    )
    assert crew_call_text(task) == (
        "平安派单。任务7，暴雪橙色预警，地点：源汇区全区。您还没有确认。"
        "负责路段：沙河大桥、黄河路、解放路等4处。接单请按1，拒绝请按2。"
    )


@pytest.mark.parametrize(
    ("digits", "action"),
    [
        ("1", CrewAction.ACK),
        ("2", CrewAction.DECLINE),
        ("3", None),  # on scene: not a question a call asks
        ("9", None),
        ("0", None),
        ("", None),
        ("12", None),
        ("*", None),
        ("#", None),
        ("１", None),  # full-width: a keypad never sends it
        (" 1", None),
    ],
)
def test_what_a_key_means(digits: str, action: CrewAction | None) -> None:
    assert call_answer(digits) == action


def test_the_call_twiml_exactly() -> None:
    assert call_twiml("任务12。接单请按1，拒绝请按2。", URL) == (
        '<?xml version="1.0" encoding="UTF-8"?><Response>'
        f'<Gather action="{URL}" method="POST" numDigits="1" timeout="8">'
        '<Say language="zh-CN">任务12。接单请按1，拒绝请按2。</Say></Gather>'
        f'<Gather action="{URL}" method="POST" numDigits="1" timeout="8">'
        '<Say language="zh-CN">接单请按1，拒绝请按2。</Say></Gather>'
        '<Say language="zh-CN">未收到按键，请回复短信确认。再见。</Say></Response>'
    )


def test_a_reports_words_cannot_become_markup() -> None:
    hostile = '树倒了</Say><Dial>+15005550006</Dial><Say>"&amp;'
    xml = call_twiml(hostile, URL + '?x="><Hangup/>')
    root = ElementTree.fromstring(xml)
    assert [e.tag for e in root.iter()] == ["Response", "Gather", "Say", "Gather", "Say", "Say"]
    assert root[0][0].text == hostile
    assert root[0].get("action") == URL + '?x="><Hangup/>'


def test_reprompt_and_answer() -> None:
    root = ElementTree.fromstring(reprompt_twiml(URL))
    assert root[0].tag == "Gather" and root[0].get("action") == URL
    assert root[0][0].text == "未识别您的按键。接单请按1，拒绝请按2。"
    root = ElementTree.fromstring(answered_twiml("任务12：已接单，已记录。"))
    assert [(e.tag, e.text) for e in root] == [
        ("Say", "任务12：已接单，已记录。"),
        ("Hangup", None),
    ]


def test_the_answer_url() -> None:
    assert answer_url("https://pingan.example.cn/", 12) == URL


def test_every_call_status_has_a_place_on_the_ledgers_line() -> None:
    assert set(CALL_RECEIPTS.values()) <= set(PROGRESS)
    assert CALL_RECEIPTS["no-answer"] == CALL_RECEIPTS["busy"] == "undelivered"


def test_the_calls_create_arguments() -> None:
    channel = TwilioVoiceChannel(
        "AC" + "0" * 32,
        "secret",
        "+15005550006",
        status_callback="https://pingan.example.cn/webhooks/twilio/voice/status",
    )
    message = Message("call:assignment:12", "+8613800000001", "任务12。", answer_url=URL)
    assert channel.payload(message) == {
        "to": "+8613800000001",
        "from_": "+15005550006",
        "twiml": call_twiml("任务12。", URL),
        "timeout": 30,
        "status_callback": "https://pingan.example.cn/webhooks/twilio/voice/status",
        "status_callback_method": "POST",
    }
    with pytest.raises(PermanentError, match="answer"):
        channel.payload(Message("k", "+8613800000001", "x"))
    with pytest.raises(PermanentError, match="4000"):
        channel.payload(Message("k", "+8613800000001", "长" * TWIML_MAX_CHARS, answer_url=URL))


SILENT = [(1, "assigned"), (2, "assigned")]


@pytest.mark.parametrize(
    ("task", "call", "expected"),
    [
        (  # voice on, the step that calls: phone both, take the step again later
            SILENT,
            True,
            EscalationDecision(
                call=(1, 2),
                wait_min=CALL_ANSWER_MIN,
                reason="no acknowledgement 10 min after dispatch: calling the crew leader",
            ),
        ),
        (  # voice off, or the step after the call: as before
            SILENT,
            False,
            EscalationDecision(
                time_out=(1, 2),
                replace=True,
                tell=("supervisor",),
                reason="no acknowledgement 10 min after dispatch",
            ),
        ),
        (  # somebody answered: nobody is called
            [(1, "acknowledged"), (2, "assigned")],
            True,
            EscalationDecision(stop=True, reason="assignment 1 acknowledged"),
        ),
        (  # nobody left to call (declined): the step goes on
            [(1, "declined")],
            True,
            EscalationDecision(
                replace=True,
                tell=("supervisor",),
                reason="no acknowledgement 10 min after dispatch",
            ),
        ),
    ],
)
def test_the_escalation_step_calls_first(task, call: bool, expected: EscalationDecision) -> None:  # type: ignore[no-untyped-def]
    assert escalation_step(("next_crew", "supervisor"), task, 10, call=call) == expected

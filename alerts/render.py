"""Message texts. Pure: the same inputs always give the same words."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from alerts.channels.base import WarningCard
from pingan.crews import CITY_TZ
from pingan.vocabulary import (
    DEFAULT_SEGMENT_PRIORITY,
    SEGMENT_KINDS,
    WARNING_EVENTS,
    category_zh,
    incident_title_zh,
    level_label,
    targets_zh,
)


@dataclass(frozen=True)
class CrewTask:
    """What a crew leader's task SMS says, all in words a crew acts on: no codes, no
    coordinates (the link opens the map)."""

    assignment_id: int
    category: str  # the incident's: a report category or a warning event
    level: str
    place: str  # an address, a landmark ("人民路附近"), or a district ("源汇区全区")
    ack_within_min: float
    segments: tuple[tuple[str, str], ...] = ()  # the crew's own roads: (name, kind)
    targets: tuple[str, ...] = ()  # the playbook's priority places, in order
    description: str = ""
    checklist: tuple[str, ...] = ()
    link: str | None = None


def crew_assignment_text(task: CrewTask) -> str:
    """The SMS a crew leader gets. Short: the first line must say what and where."""
    n = task.assignment_id
    lines = [
        f"【平安派单】任务{n}：{incident_title_zh(task.category, task.level)}，{task.place}。",
        f"请{task.ack_within_min:g}分钟内确认。",
    ]
    if task.segments:
        ordered = segments_in_priority(task.segments, task.targets)
        lines.append(
            "负责路段（按先后）："
            + "、".join(f"{name}（{SEGMENT_KINDS[kind][0]}）" for name, kind in ordered)
        )
    if task.targets:
        lines.append(f"优先处置：{targets_zh(task.targets)}")
    if task.description:
        lines.append(f"群众描述：{task.description[:60]}")
    if task.checklist:
        lines.append("要点：" + "；".join(chinese_part(item) for item in task.checklist))
    lines.append(f"回复“{n} 1”接单，“{n} 2 原因”拒绝，“{n} 3”到场，“{n} 9”完成")
    if task.link:
        lines.append(f"或打开：{task.link}")
    return "\n".join(lines)


# What an escalation call asks, and says when no key came.
CALL_PROMPT = "接单请按1，拒绝请按2。"
CALL_NOT_UNDERSTOOD = "未识别您的按键。"
CALL_NO_KEY = "未收到按键，请回复短信确认。再见。"
CALL_SEGMENTS = 3  # road segments read out; the SMS lists them all
CALL_DESCRIPTION_CHARS = 40


def crew_call_text(task: CrewTask) -> str:
    """What an escalation call reads to a silent crew leader: the task's first line for
    the ear (no link, no reply codes), the first roads of a district-wide task, what the
    reporter said, then the question."""
    n = task.assignment_id
    parts = [
        f"平安派单。任务{n}，{incident_title_zh(task.category, task.level)}，"
        f"地点：{task.place}。您还没有确认。"
    ]
    if task.segments:
        ordered = segments_in_priority(task.segments, task.targets)
        names = "、".join(name for name, _ in ordered[:CALL_SEGMENTS])
        more = f"等{len(ordered)}处" if len(ordered) > CALL_SEGMENTS else ""
        parts.append(f"负责路段：{names}{more}。")
    said = task.description.strip()[:CALL_DESCRIPTION_CHARS].rstrip("。.！!？? ")
    if said:
        parts.append(f"群众描述：{said}。")
    parts.append(CALL_PROMPT)
    return "".join(parts)


def segments_in_priority(
    segments: Sequence[tuple[str, str]], targets: Sequence[str]
) -> list[tuple[str, str]]:
    """A crew's segments in the order the playbook's targets give (bridges and
    culverts, then main roads, then the rest); the roster's order among equals."""
    order = [t for t in targets if t in SEGMENT_KINDS] or list(DEFAULT_SEGMENT_PRIORITY)
    return sorted(segments, key=lambda s: order.index(s[1]) if s[1] in order else len(order))


def chinese_part(text: str) -> str:
    """Playbooks write checklist items as "中文 English" for the console; an SMS
    carries the Chinese."""
    return _TRAILING_ENGLISH.sub("", text).strip() or text


_TRAILING_ENGLISH = re.compile(r"\s+[A-Za-z][A-Za-z0-9 ,.;:'()/&-]*$")


def crew_reminder_text(assignment_id: int, category: str, link: str | None) -> str:
    what = category_zh(category)
    text = (
        f"【平安派单】提醒：任务{assignment_id}（{what}）已超过到场时限，"
        f"到场后请回复“{assignment_id} 3”。"
    )
    return text + (f"\n{link}" if link else "")


def staff_level_text(incident_id: int, category: str, level: str, note: str | None) -> str:
    """What a playbook's notify_staff says when an incident opens at, or rises to, a
    level: one line of the supervisor's digest."""
    text = f"事件{incident_id}（{category_zh(category)}）启动{level_label(level)['zh']}级响应"
    return text + (f"：{note}" if note else "")


def crew_unreachable_text(assignment_id: int, crew_name: str, refused: bool) -> str:
    """A line of the supervisor's digest when a crew's task could not be delivered:
    the number refused it for good, or the provider kept failing."""
    why = "号码无法接收短信" if refused else "短信多次发送失败，仍在重试"
    return f"任务{assignment_id}：{crew_name}的派单{why}，请电话联系班组"


def staff_digest_text(name: str, items: Sequence[str]) -> str:
    """Everything for one supervisor in the last couple of minutes, in one SMS."""
    head = f"【平安督办】{name}，{len(items)}条待关注："
    return head + "\n" + "\n".join(f"{n}. {item}" for n, item in enumerate(items, start=1))


def citizen_received_text(request_id: int, category: str) -> str:
    what = category_zh(category, unknown="问题")
    return (
        f"【漯河城管】您反映的{what}已受理，编号{request_id}。"
        "处理完成后将短信告知。查询进度请拨12345。"
    )


def citizen_resolved_text(request_id: int, category: str, what_was_done: str) -> str:
    what = category_zh(category, unknown="问题")
    return (
        f"【漯河城管】您反映的{what}（编号{request_id}）已处理：{what_was_done}。"
        "请回复1-5评价（5为非常满意）。"
    )


def sms_reply_text(request_id: int, review: bool, duplicate: bool) -> str:
    if duplicate:
        return f"【漯河城管】您的反映已收到（编号{request_id}），请勿重复发送。"
    if review:
        return (
            f"【漯河城管】已收到您的反映，编号{request_id}。工作人员将核实地点和类别，"
            "如需补充请回复详细地址。"
        )
    return f"【漯河城管】已受理，编号{request_id}，我们会尽快安排处理。"


# ---- a citizen warning as a card's short fields ----------------------------------------
# Since May 2023 a WeChat Official Account template message shows no `first` or `remark`
# line and at most 20 characters per keyword; the full text is behind the card's link.
CARD_FIELD_MAX = 20
_CLAUSE_ENDS = "，；。！？,;!?"
_SENDER = re.compile(r"^\s*【[^】]*】")
_SENTENCE_ENDS = re.compile(r"[。！？!?]")
CARD_LEVEL_SUFFIX = {"Alert": "预警", "Update": "预警（更新）", "Cancel": "预警（解除）"}


def fit(text: str, limit: int = CARD_FIELD_MAX) -> str:
    """At most `limit` characters on one line: the whole text when it fits; else its
    leading clauses up to the last clause break that keeps at least half; else cut,
    ending in an ellipsis so nobody takes it for the whole."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    head = text[:limit]
    cut = max(head.rfind(mark) for mark in _CLAUSE_ENDS)
    if cut >= limit // 2:
        return head[:cut]
    return text[: limit - 1] + "…"


def fit_list(names: Sequence[str], whole: str = "", limit: int = CARD_FIELD_MAX) -> str:
    """Names joined with 、 within `limit`: as many as fit, then how many more
    ("源汇区、郾城区等5地"); `whole` (e.g. 全市) when that is what they are."""
    if whole:
        return fit(whole, limit)
    joined = "、".join(names)
    if len(joined) <= limit or len(names) == 1:
        return fit(joined, limit)
    for shown in range(len(names) - 1, 0, -1):
        text = "、".join(names[:shown]) + f"等{len(names)}地"
        if len(text) <= limit:
            return text
    return fit(names[0], limit - len(f"等{len(names)}地")) + f"等{len(names)}地"


def warning_advice(text_zh: str) -> str:
    """What a citizen should do, from the warning's text: the sentence after the
    headline (the sender's 【…】 dropped), or the only sentence there is."""
    body = _SENDER.sub("", text_zh)
    sentences = [s.strip() for s in _SENTENCE_ENDS.split(body) if s.strip()]
    if not sentences:
        return ""
    return sentences[1] if len(sentences) > 1 else sentences[0]


def local_time(at: datetime) -> str:
    """A moment as citizens read it: the city's clock, 2026年11月27日 16:00."""
    return at.astimezone(CITY_TZ).strftime("%Y年%m月%d日 %H:%M")


def warning_card(
    warning_id: int,
    event: str,
    level: str,
    msg_type: str,
    district_names: Sequence[str],
    issued_at: datetime,
    text_zh: str,
    whole_city: bool = False,
) -> WarningCard:
    """The warning's fields for a card, each within CARD_FIELD_MAX characters."""
    suffix = CARD_LEVEL_SUFFIX.get(msg_type, "预警")
    return WarningCard(
        warning_id=warning_id,
        event=fit(WARNING_EVENTS.get(event, event)),
        level=fit(level_label(level)["zh"] + suffix),
        area=fit_list(district_names, "全市" if whole_city else ""),
        time=fit(local_time(issued_at)),
        advice=fit(warning_advice(text_zh)),
    )

"""Message texts. Pure: the same inputs always give the same words."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from pingan.vocabulary import (
    DEFAULT_SEGMENT_PRIORITY,
    SEGMENT_KINDS,
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

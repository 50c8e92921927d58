"""Message texts. Pure: the same inputs always give the same words."""

from __future__ import annotations

from collections.abc import Sequence

from pingan.vocabulary import category_zh, level_label, targets_zh


def crew_assignment_text(
    assignment_id: int,
    category: str,
    lat: float | None,
    lon: float | None,
    address: str | None,
    description: str,
    ack_within_min: float,
    checklist: Sequence[str],
    link: str | None = None,
    targets: Sequence[str] = (),
) -> str:
    """The SMS a crew leader gets. Short: the first line must say what and where."""
    what = category_zh(category)
    where = address or (
        f"{lat:.5f},{lon:.5f}" if lat is not None and lon is not None else "位置待定"
    )
    lines = [
        f"【平安派单】任务{assignment_id}：{what}，{where}。",
        f"请{ack_within_min:g}分钟内确认。",
    ]
    if targets:
        lines.append(f"优先处置：{targets_zh(targets)}")
    if description:
        lines.append(f"群众描述：{description[:60]}")
    if checklist:
        lines.append("要点：" + "；".join(checklist))
    lines.append(
        f"回复“{assignment_id} 1”接单，“{assignment_id} 2 原因”拒绝，"
        f"“{assignment_id} 3”到场，“{assignment_id} 9”完成"
    )
    if link:
        lines.append(f"或打开：{link}")
    return "\n".join(lines)


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

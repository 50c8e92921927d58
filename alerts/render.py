"""Message texts. Pure: the same inputs always give the same words."""

from __future__ import annotations

from collections.abc import Sequence

CATEGORY_ZH = {
    "fallen_tree": "倒伏树木",
    "waterlogging": "道路积水",
    "snow_ice": "道路积雪结冰",
    "manhole": "井盖缺失/破损",
    "streetlight": "路灯故障",
}


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
) -> str:
    """The SMS a crew leader gets. Short: the first line must say what and where."""
    what = CATEGORY_ZH.get(category, category)
    where = address or (
        f"{lat:.5f},{lon:.5f}" if lat is not None and lon is not None else "位置待定"
    )
    lines = [
        f"【平安派单】任务{assignment_id}：{what}，{where}。",
        f"请{ack_within_min:g}分钟内确认。",
    ]
    if description:
        lines.append(f"群众描述：{description[:60]}")
    if checklist:
        lines.append("要点：" + "；".join(checklist))
    if link:
        lines.append(f"确认/完成：{link}")
    return "\n".join(lines)

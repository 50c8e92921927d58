"""The words of the domain, in one place: report categories, warning events, levels,
measurements, and the states of incidents and assignments, each with its Chinese and
English name. Everything else (the playbook format, messages, the console, Open311)
reads them from here. Pure; imports nothing from the project.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal, get_args

Label = dict[str, str]  # {"zh": ..., "en": ...}

# ---- levels -----------------------------------------------------------------------
# "watch" is internal: an incident seen but not yet corroborated (no actions).
LEVEL_ORDER: tuple[str, ...] = ("watch", "routine", "blue", "yellow", "orange", "red")
Level = Literal["routine", "blue", "yellow", "orange", "red"]
WarningLevel = Literal["blue", "yellow", "orange", "red"]
LEVELS: dict[str, tuple[str, str]] = {
    "watch": ("待核实", "watch (not yet corroborated)"),
    "routine": ("一般", "routine"),
    "blue": ("蓝色", "blue"),
    "yellow": ("黄色", "yellow"),
    "orange": ("橙色", "orange"),
    "red": ("红色", "red"),
}


def level_rank(level: str) -> int:
    return LEVEL_ORDER.index(level)


# The words a sender writes for a warning signal's level (its colour), lower case.
WARNING_LEVEL_WORDS: dict[str, str] = {
    word.lower(): level for level in get_args(WarningLevel) for word in LEVELS[level]
}


def warning_level(word: object) -> str | None:
    """The warning level a word names ("橙色", "Orange", "orange"), or None."""
    return WARNING_LEVEL_WORDS.get(str(word).strip().lower())


# ---- official warning signals (气象灾害预警信号), by their English keys --------------
WarningEvent = Literal["blizzard", "rainstorm", "gale", "road_icing", "cold_wave"]
WARNING_EVENTS: dict[str, str] = {
    "blizzard": "暴雪",
    "rainstorm": "暴雨",
    "gale": "大风",
    "road_icing": "道路结冰",
    "cold_wave": "寒潮",
}

# ---- what citizens report (the Open311 service codes) ------------------------------
CATEGORIES: dict[str, tuple[str, str]] = {
    "fallen_tree": ("倒伏树木", "Fallen tree"),
    "waterlogging": ("道路积水", "Flooded road"),
    "snow_ice": ("道路积雪结冰", "Snow or ice"),
    "manhole": ("井盖缺失破损", "Manhole cover"),
    "streetlight": ("路灯故障", "Streetlight out"),
}

# ---- the places a crew sees to first (a playbook's `targets`, in priority order) ----
TARGETS: dict[str, tuple[str, str]] = {
    "bridge": ("桥梁", "bridges"),
    "overpass": ("立交桥", "overpasses"),
    "underpass": ("下穿通道", "underpasses"),
    "culvert": ("涵洞", "culverts"),
    "main_road": ("主干道", "main roads"),
    "school_gate": ("学校门口", "school gates"),
    "hospital_access": ("医院通道", "hospital access roads"),
    "low_lying_area": ("低洼路段", "low-lying streets"),
    "drainage_outlet": ("排水口", "drainage outlets"),
}
# ---- what kind of road a crew's segment (包路段) is --------------------------------
SEGMENT_KINDS: dict[str, tuple[str, str]] = {
    "bridge": ("桥梁", "bridge"),
    "overpass": ("立交桥", "overpass"),
    "culvert": ("涵洞", "culvert"),
    "underpass": ("下穿通道", "underpass"),
    "main_road": ("主干道", "main road"),
    "back_street": ("背街小巷", "back street"),
}
# A playbook without targets still sends crews to bridges and culverts first, then the
# main roads (the bureau's standing order in snow and ice), then the rest.
DEFAULT_SEGMENT_PRIORITY = ("bridge", "overpass", "culvert", "underpass", "main_road")

# ---- what a crew can do (a roster's `skills`, a playbook's dispatch `skill`) ----------
SKILLS: dict[str, tuple[str, str]] = {
    "tree": ("园林抢险", "tree"),
    "drainage": ("排水抢险", "drainage"),
    "pump": ("泵车排涝", "pump"),
    "snow_ice": ("除雪破冰", "snow and ice"),
    "lighting": ("路灯抢修", "lighting"),
    "manhole": ("井盖抢修", "manhole"),
    "roads": ("道路抢修", "roads"),
}

# ---- why a crew was chosen (pingan/crews.py `choose_crews`), in words ---------------
# A choice is kept as data (its rule and numbers, `CrewReason`); these are its words.
# The English is also the text the audit trail and the logs keep. {segment} is the
# segment's name where known (人民路), else its id; the Chinese never shows an id.
CREW_REASON_RULES: dict[str, tuple[str, str]] = {
    "segment_owner": ("负责该路段{segment_zh}", "owns road segment {segment}"),
    "owner_unit": (
        "与路段负责班组同一单元（负责班组忙或不在班）",
        "same unit {unit} as the segment owner (owner busy or off shift)",
    ),
    "nearest": ("最近的空闲{skill_zh}班组", "nearest available with skill '{skill}'"),
}
CREW_REASON_DISTANCE = ("距驻地{km:.1f}公里", "{km:.1f} km from base")
CREW_REASON_NO_LOCATION = ("报告未给出位置", "no location given")
CREW_REASON_LOAD = (
    "手头任务{load}项，近24小时派单{recent}次",
    "{load} active task(s), {recent} in the last 24 h",
)


def crew_reason(reason: Mapping[str, Any], lang: str, segment_name: str | None = None) -> str:
    """Why a crew was chosen, in one language ("zh" or "en"): the rule, then where the
    crew is and how busy. `reason` is a `CrewReason`'s fields."""
    n = 0 if lang == "zh" else 1
    segment = str(reason.get("segment") or "")
    skill = str(reason.get("skill") or "")
    words = CREW_REASON_RULES[str(reason["rule"])][n].format(
        segment=f"{segment} ({segment_name})" if segment_name else segment,
        segment_zh=f"（{segment_name}）" if segment_name else "",
        unit=reason.get("unit") or "",
        skill=skill,
        skill_zh=SKILLS.get(skill, (skill, skill))[0],
    )
    km = reason.get("km")
    if km is None:
        where = CREW_REASON_NO_LOCATION[n]
    else:
        where = CREW_REASON_DISTANCE[n].format(km=float(km))
    load = CREW_REASON_LOAD[n].format(load=reason.get("load", 0), recent=reason.get("recent", 0))
    return f"{words}：{where}，{load}" if n == 0 else f"{words}: {where}, {load}"


STAFF_ROLES: dict[str, tuple[str, str]] = {
    "supervisor": ("班组主管", "supervisor"),
    "duty_leader": ("值班领导", "duty leader"),
    "bureau_leader": ("局领导", "bureau leader"),
}

# ---- what the threshold evaluator measures per district ----------------------------
Metric = Literal[
    "precipitation_mm",
    "snowfall_mm",
    "wind_gust_ms",
    "wind_mean_ms",
    "temperature_min_c",
    "temperature_drop_c",
]


@dataclass(frozen=True)
class MetricWords:
    """A measurement: what it is, its names as an incident category, and the physical
    bounds outside which a threshold could never be reached."""

    description: str
    zh: str
    en: str
    low: float
    high: float


METRICS: dict[str, MetricWords] = {
    "precipitation_mm": MetricWords(
        "rain and melted snow, summed over the window (mm)",
        "降水量超阈值",
        "Rainfall over threshold",
        0,
        1000,
    ),
    "snowfall_mm": MetricWords(
        "snowfall as water equivalent, summed over the window (mm)",
        "降雪量超阈值",
        "Snowfall over threshold",
        0,
        500,
    ),
    "wind_gust_ms": MetricWords(
        "strongest gust in the window (m/s)", "阵风超阈值", "Gusts over threshold", 0, 110
    ),
    "wind_mean_ms": MetricWords(
        "strongest 10-minute mean wind in the window (m/s)",
        "平均风速超阈值",
        "Mean wind over threshold",
        0,
        90,
    ),
    "temperature_min_c": MetricWords(
        "lowest air temperature in the window (°C)", "低温", "Low temperature", -60, 50
    ),
    "temperature_drop_c": MetricWords(
        "fall of the minimum temperature over the window (°C)",
        "急剧降温",
        "Sharp temperature drop",
        0,
        50,
    ),
}
WINDOWS_H: tuple[int, ...] = (1, 3, 6, 12, 24, 48)


# ---- states -----------------------------------------------------------------------
class IncidentStatus(StrEnum):
    OPEN = "open"  # known, no crew yet (or waiting for corroboration)
    DISPATCHED = "dispatched"  # crews assigned, none acknowledged
    IN_PROGRESS = "in_progress"  # at least one crew acknowledged
    RESOLVED = "resolved"


class AssignmentState(StrEnum):
    ASSIGNED = "assigned"
    ACKNOWLEDGED = "acknowledged"
    EN_ROUTE = "en_route"
    ON_SCENE = "on_scene"
    DONE = "done"
    DECLINED = "declined"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"


# What a crew can do with a task (CrewAction in pingan/core/assignments.py).
CREW_ACTIONS: dict[str, tuple[str, str]] = {
    "ack": ("接单", "Accept"),
    "decline": ("拒绝", "Decline"),
    "en_route": ("出发", "En route"),
    "on_scene": ("到场", "On scene"),
    "done": ("完成", "Done"),
}

STATUSES: dict[str, tuple[str, str]] = {
    IncidentStatus.OPEN: ("待派单", "open"),
    IncidentStatus.DISPATCHED: ("已派单", "dispatched"),
    IncidentStatus.IN_PROGRESS: ("处置中", "in progress"),
    IncidentStatus.RESOLVED: ("已办结", "resolved"),
    AssignmentState.ASSIGNED: ("待接单", "assigned"),
    AssignmentState.ACKNOWLEDGED: ("已接单", "acknowledged"),
    AssignmentState.EN_ROUTE: ("在途", "en route"),
    AssignmentState.ON_SCENE: ("已到场", "on scene"),
    AssignmentState.DONE: ("已完成", "done"),
    AssignmentState.DECLINED: ("已拒绝", "declined"),
    AssignmentState.TIMED_OUT: ("超时已转派", "timed out, passed on"),
    AssignmentState.CANCELLED: ("已取消", "cancelled"),
}

# ---- what the audit trail records (store.record_audit's `action`) -----------------
# Every action the code writes has words here (tests/unit/test_trail_words.py reads
# the code for them). Actions made of a state or an outcome are listed in full.
AUDIT_ACTIONS: dict[str, tuple[str, str]] = {
    # incidents
    "incident.opened": ("立案", "incident opened"),
    "incident.upgraded": ("级别升高", "level raised"),
    "incident.attached": ("并入新的报告或预警", "report or warning attached"),
    "incident.warnings_ended": ("相关预警结束", "its warnings ended"),
    "incident.confirmed": ("确认立案", "confirmed"),
    "incident.merged": ("合并事件", "incidents merged"),
    "incident.split": ("拆分事件", "incident split"),
    "incident.reopened": ("重新打开", "reopened"),
    "incident.held": ("暂缓处置（全市红色预警）", "held (citywide red warning)"),
    "incident.released": ("解除暂缓", "released"),
    "incident.staffed": ("已有班组", "staffed"),
    "incident.unstaffed": ("无可派班组", "no crew available"),
    "incident.dispatch_requested": ("调度员要求派单", "dispatch requested"),
    "incident.open": ("转为待派单", "now open"),
    "incident.dispatched": ("转为已派单", "now dispatched"),
    "incident.in_progress": ("转为处置中", "now in progress"),
    "incident.resolved": ("办结", "resolved"),
    # a crew's task
    "assignment.created": ("派单", "crew assigned"),
    "assignment.reassigned": ("改派", "reassigned"),
    "assignment.timed_out": ("超时未接单，转派", "not acknowledged in time, passed on"),
    "assignment.called": ("电话呼叫班组长", "crew leader called"),
    "assignment.reminded": ("提醒到场", "reminded to arrive"),
    "assignment.assigned": ("待接单", "assigned"),
    "assignment.acknowledged": ("班组接单", "crew acknowledged"),
    "assignment.en_route": ("班组出发", "crew en route"),
    "assignment.on_scene": ("班组到场", "crew on scene"),
    "assignment.done": ("班组完成", "crew done"),
    "assignment.declined": ("班组拒绝", "crew declined"),
    "assignment.cancelled": ("任务取消", "task cancelled"),
    "assignment.ack.refused": ("接单未受理", "acknowledgement refused"),
    "assignment.decline.refused": ("拒绝未受理", "decline refused"),
    "assignment.en_route.refused": ("出发未受理", "en route refused"),
    "assignment.on_scene.refused": ("到场未受理", "on scene refused"),
    "assignment.done.refused": ("完成未受理", "done refused"),
    # messages
    "crew.assignment.queued": ("派单短信待发", "assignment text queued"),
    "crew.reminder.queued": ("提醒短信待发", "reminder text queued"),
    "staff.digest.queued": ("督办汇总待发", "staff digest queued"),
    "citizen.received.queued": ("受理回执待发", "receipt to the caller queued"),
    "citizen.resolved.queued": ("办结回复待发", "resolution text to the caller queued"),
    "crew.call.sent": ("已呼叫班组长", "call placed"),
    "crew.call.already_sent": ("呼叫此前已发出", "call already placed"),
    "crew.call.failed": ("呼叫失败", "call failed"),
    "crew.call.retry": ("呼叫待重试", "call to be retried"),
    "crew.call.skipped": ("无需呼叫", "call not needed"),
    "staff.alerted": ("已告知主管", "supervisor told"),
    "message.given_up": ("放弃发送", "message given up"),
    # reports
    "report.accepted": ("受理报告", "report accepted"),
    "report.duplicate_folded": ("重复报告合并", "duplicate report folded in"),
    "report.reviewed": ("人工核实", "report reviewed"),
    "report.rated": ("市民评价", "rated by the caller"),
    "report.unmatched": ("报告无对应预案", "report matched no playbook"),
    # warnings
    "warning.alert": ("收到预警", "warning received"),
    "warning.update": ("预警更新", "warning updated"),
    "warning.cancel": ("预警解除", "warning cancelled"),
    "citizen_warning.drafted": ("起草市民预警", "citizen warning drafted"),
    "citizen_warning.approved": ("审批发送", "approved and sent"),
    "citizen_warning.update": ("发出更正", "correction sent"),
    "citizen_warning.cancel": ("发出撤回", "cancellation sent"),
    "citizen_warning.chunk_queued": ("分批发送待发", "batch queued"),
    # crews, people and the system itself
    "crew.upserted": ("名册更新班组", "crew updated from the roster"),
    "crew.retired": ("班组停用", "crew retired"),
    "crew.shift_override": ("临时调整班次", "shift changed"),
    "subscribers.imported": ("导入订阅市民", "subscribers imported"),
    "subscriber.opted_out": ("市民退订", "subscriber opted out"),
    "subscriber.opted_in": ("市民重新订阅", "subscriber opted in"),
    "user.created": ("新增用户", "user created"),
    "login": ("登录", "logged in"),
    "login.failed": ("登录失败", "login failed"),
    "crew_link.refused": ("班组链接被拒", "crew link refused"),
    "webhook.signature_refused": ("回调签名无效", "webhook signature refused"),
    "worker.stalled": ("处理进程停滞", "worker stalled"),
    "event.rejected": ("事件被拒收", "event rejected"),
}
UNKNOWN_ACTION = ("其他记录", "other")

# Who did it, when not a person: the names the code writes as an audit actor.
ACTORS: dict[str, tuple[str, str]] = {
    "system": ("系统", "system"),
    "api": ("接口令牌", "API token"),
    "roster": ("班组名册", "roster"),
    "import": ("导入", "import"),
    "citizen": ("市民", "citizen"),
    "webhook": ("服务商回调", "provider callback"),
    "crew-link": ("班组链接", "crew link"),
    "-": ("未知", "unknown"),
}
# How a crew answered ("crew:ID via sms"), and a dispatcher acting for a crew.
CREW_VIA: dict[str, tuple[str, str]] = {
    "sms": ("短信", "SMS"),
    "voice": ("电话按键", "phone keys"),
    "link": ("手机链接", "phone link"),
}
FOR_THE_CREW = ("代班组操作", "for the crew")

# ---- messages: channels, kinds (alerts/history.py) and statuses (alerts/ledger.py) ---
CHANNELS: dict[str, tuple[str, str]] = {
    "sms": ("短信", "SMS"),
    "wechat": ("微信", "WeChat"),
    "voice": ("电话", "phone call"),
    "supervisor": ("告知主管", "supervisor told"),
}
WARNING_CHANNELS: tuple[str, ...] = ("sms", "wechat")  # what a citizen warning goes by
MESSAGE_KINDS: dict[str, tuple[str, str]] = {
    "crew.assignment": ("派单", "crew assignment"),
    "crew.reminder": ("到场提醒", "crew reminder"),
    "staff.digest": ("督办汇总", "staff digest"),
    "citizen.received": ("受理回执", "report received"),
    "citizen.resolved": ("办结回复", "report resolved"),
    "citizen.warning": ("预警", "warning"),
    "sms.reply": ("短信回复", "SMS reply"),
    "other": ("其他", "other"),
}
MESSAGE_STATUSES: dict[str, tuple[str, str]] = {
    "pending": ("待发送", "pending"),
    "accepted": ("服务商已接收", "accepted"),
    "scheduled": ("已排期", "scheduled"),
    "queued": ("排队中", "queued"),
    "sending": ("发送中", "sending"),
    "receiving": ("接收中", "receiving"),
    "sent": ("已发出", "sent"),
    "failed": ("发送失败", "failed"),
    "undelivered": ("未送达", "undelivered"),
    "canceled": ("已取消", "canceled"),
    "partially_delivered": ("部分送达", "partially delivered"),
    "delivered": ("已送达", "delivered"),
    "received": ("已接收", "received"),
    "read": ("已读", "read"),
}
# A citizen warning's own states (alerts/citizen_warnings.py).
WARNING_STATUSES: dict[str, tuple[str, str]] = {
    "draft": ("待审批", "draft"),
    "sent": ("已发送", "sent"),
    "cancelled": ("已撤回", "cancelled"),
}

# ---- refusals a dispatcher meets in the console (an API error's `code`) -------------
ERRORS: dict[str, tuple[str, str]] = {
    "role": ("当前角色无权执行此操作", "Your role may not do this"),
    "two_person_rule": (
        "两人规则：起草人不能审批自己起草的预警，请另一位调度员审批",
        "Two-person rule: the drafter cannot approve their own warning; another dispatcher must",
    ),
}

# ---- the console's people and the system's parts -----------------------------------
ROLES: dict[str, tuple[str, str]] = {
    "viewer": ("查看员", "viewer"),
    "dispatcher": ("调度员", "dispatcher"),
    "supervisor": ("值班主任", "supervisor"),
    "admin": ("管理员", "admin"),
}
COMPONENTS: dict[str, tuple[str, str]] = {
    "worker": ("流处理进程", "worker"),
    "scheduler": ("气象源调度", "feed scheduler"),
    "relay": ("事件转发", "relay"),
    "playbooks": ("预案（处理进程）", "playbooks (worker)"),
    "playbooks(http)": ("预案（网页服务）", "playbooks (HTTP)"),
    "deliveries": ("送达回执", "delivery receipts"),
}
COMPONENT_STATES: dict[str, tuple[str, str]] = {
    "ok": ("正常", "ok"),
    "ready": ("就绪", "ready"),
    "running": ("运行中", "running"),
    "starting": ("启动中", "starting"),
    "stopped": ("已停止", "stopped"),
    "stalled": ("停滞", "stalled"),
    "down": ("故障", "down"),
    "invalid": ("有错误", "invalid"),
}

# The Literals feed the playbook format's validation; the tables feed every label.
# A word added to one and not the other is a mistake this catches at import.
assert set(get_args(WarningEvent)) == set(WARNING_EVENTS)
assert set(get_args(Metric)) == set(METRICS)
assert set(get_args(Level)) | {"watch"} == set(LEVELS) == set(LEVEL_ORDER)


# ---- labels -----------------------------------------------------------------------
def category_label(category: str) -> Label:
    """An incident's category in words: a report category, a warning event
    ("暴雪预警") or a threshold measurement. Unknown codes come back as themselves."""
    if category in CATEGORIES:
        zh, en = CATEGORIES[category]
        return {"zh": zh, "en": en}
    if category in WARNING_EVENTS:
        english = category.replace("_", " ")
        return {"zh": f"{WARNING_EVENTS[category]}预警", "en": f"{english.capitalize()} warning"}
    if category in METRICS:
        words = METRICS[category]
        return {"zh": words.zh, "en": words.en}
    return {"zh": category, "en": category}


def category_zh(category: str, unknown: str | None = None) -> str:
    """The Chinese name a message uses; `unknown` (default: the code) otherwise."""
    label = category_label(category)
    if label["zh"] == category and unknown is not None:
        return unknown
    return label["zh"]


def incident_title_zh(category: str, level: str) -> str:
    """An incident as a crew's text names it: 暴雪橙色预警 for a warning signal at its
    colour, 倒伏树木（一般） for the rest."""
    colour = LEVELS.get(level, (level, level))[0]
    if category in WARNING_EVENTS and level in get_args(WarningLevel):
        return f"{WARNING_EVENTS[category]}{colour}预警"
    return f"{category_zh(category)}（{colour}）"


def targets_zh(targets: Sequence[str]) -> str:
    """A playbook's priority places as a crew reads them: 桥梁、涵洞、主干道."""
    return "、".join(TARGETS.get(t, (t, t))[0] for t in targets)


def level_label(level: str) -> Label:
    zh, en = LEVELS.get(level, (level, level))
    return {"zh": zh, "en": en}


def skill_label(skill: str) -> Label:
    zh, en = SKILLS.get(skill, (skill, skill))
    return {"zh": zh, "en": en}


def event_label(event: str) -> Label:
    """An official warning signal's event: 暴雪 / Blizzard."""
    return {"zh": WARNING_EVENTS.get(event, event), "en": event.replace("_", " ").capitalize()}


def audit_label(action: str) -> Label:
    zh, en = AUDIT_ACTIONS.get(action, UNKNOWN_ACTION)
    return {"zh": zh, "en": en}


def words(table: Mapping[str, tuple[str, str]]) -> dict[str, Label]:
    """A table of words as {code: {"zh": ..., "en": ...}}."""
    return {code: {"zh": zh, "en": en} for code, (zh, en) in table.items()}


def status_label(status: str) -> Label:
    zh, en = STATUSES.get(status, (status, status))
    return {"zh": zh, "en": en}

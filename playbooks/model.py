"""The playbook format: what duty officers write, as a typed model.

A playbook says what starts a response (triggers), how strong the response is at
each level (actions per level), and when it is over (resolution). Unknown keys are
errors: a typo must never silently switch an action off. docs/playbooks.md explains
the format for the people who write playbooks.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pingan.vocabulary import (
    LEVEL_ORDER,
    METRICS,
    WINDOWS_H,
    Level,
    Metric,
    WarningEvent,
    WarningLevel,
    level_rank,
)


class FieldProblem(ValueError):
    """A validation problem that knows which field below the validated object it is
    about, so the loader can point at that line."""

    def __init__(self, message: str, *path: str | int) -> None:
        super().__init__(message)
        self.path = path


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Names(_Strict):
    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)


class WarningTrigger(_Strict):
    """An official warning signal (CAP or CMA feed) of this event at or above a level.
    The incident takes the warning's level."""

    kind: Literal["warning"]
    event: WarningEvent
    min_level: WarningLevel = "blue"


class ThresholdTrigger(_Strict):
    """A forecast or observation per district crossing a value over a window."""

    kind: Literal["threshold"]
    metric: Metric
    window_h: int
    op: Literal[">=", "<="] = ">="
    value: float
    level: Level

    @field_validator("window_h")
    @classmethod
    def _known_window(cls, window: int) -> int:
        if window not in WINDOWS_H:
            raise ValueError(f"window_h must be one of {', '.join(map(str, WINDOWS_H))}")
        return window

    @model_validator(mode="after")
    def _reachable(self) -> ThresholdTrigger:
        low, high = METRICS[self.metric].low, METRICS[self.metric].high
        if not low <= self.value <= high:
            raise FieldProblem(
                f"{self.metric} {self.op} {self.value:g} can never happen "
                f"(plausible range {low:g}..{high:g})",
                "value",
            )
        if (self.op == ">=" and self.value <= low) or (self.op == "<=" and self.value >= high):
            raise FieldProblem(f"{self.metric} {self.op} {self.value:g} is always true", "value")
        return self


class ReportTrigger(_Strict):
    """Citizen reports of a category; with min_reports > 1 the incident waits (level
    'watch', no actions) until that many reports corroborate it."""

    kind: Literal["report"]
    category: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    min_reports: int = Field(default=1, ge=1, le=1000)
    level: Level = "routine"


Trigger = Annotated[WarningTrigger | ThresholdTrigger | ReportTrigger, Field(discriminator="kind")]


class Correlation(_Strict):
    """Reports this close in space and time are the same incident."""

    radius_m: float = Field(gt=0, le=50_000)
    window_min: float = Field(gt=0, le=7 * 24 * 60)


class DispatchAction(_Strict):
    skill: str
    crews: int = Field(default=1, ge=1, le=50)
    per: Literal["incident", "district"] = "incident"
    equipment: tuple[str, ...] = ()
    targets: tuple[str, ...] = Field(default=(), description="priority places, in order")
    ack_within_min: float = Field(default=10, gt=0, le=24 * 60)
    arrive_within_min: float | None = Field(default=None, gt=0, le=24 * 60)
    checklist: tuple[str, ...] = ()


class NotifyCitizens(_Strict):
    template: str
    channels: tuple[Literal["sms", "wechat"], ...] = Field(min_length=1)
    districts: Literal["affected", "all"] = "affected"
    approval: Literal["required", "auto"] = "required"


class NotifyStaff(_Strict):
    role: Literal["supervisor", "duty_leader", "bureau_leader"]
    message: str | None = None


class EscalationStep(_Strict):
    """If no crew has acknowledged `after_min` minutes after dispatch, do this."""

    after_min: float = Field(gt=0, le=24 * 60)
    notify: tuple[Literal["next_crew", "supervisor", "duty_leader"], ...] = Field(min_length=1)


class LevelActions(_Strict):
    dispatch: tuple[DispatchAction, ...] = ()
    notify_citizens: tuple[NotifyCitizens, ...] = ()
    notify_staff: tuple[NotifyStaff, ...] = ()
    escalation: tuple[EscalationStep, ...] = ()

    @field_validator("escalation")
    @classmethod
    def _escalation_in_time_order(cls, steps: tuple[EscalationStep, ...]) -> tuple:
        times = [s.after_min for s in steps]
        if times != sorted(times) or len(set(times)) != len(times):
            raise ValueError("escalation steps must be in increasing after_min order")
        return steps


ResolveWhen = Literal[
    "all_tasks_done", "warning_cancelled", "warning_expired", "threshold_cleared", "dispatcher"
]


class Resolution(_Strict):
    when: tuple[ResolveWhen, ...] = ("all_tasks_done", "dispatcher")


class Playbook(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    version: int = Field(ge=1)
    name: Names
    owner: str = Field(min_length=1)
    source: str = Field(min_length=1, description="Where the thresholds and steps come from")
    districts: tuple[str, ...] = Field(
        default=(), description="districts this playbook covers; empty: the whole city"
    )
    triggers: tuple[Trigger, ...] = Field(min_length=1)
    correlation: Correlation | None = None
    levels: dict[Level, LevelActions] = Field(min_length=1)
    resolution: Resolution = Resolution()

    @field_validator("levels")
    @classmethod
    def _levels_in_order(cls, levels: dict[str, LevelActions]) -> dict[str, LevelActions]:
        names = list(levels)
        if names != sorted(names, key=level_rank):
            raise ValueError(
                f"levels must be listed in order {' < '.join(LEVEL_ORDER[1:])}, "
                f"found {', '.join(names)}"
            )
        return levels

    @model_validator(mode="after")
    def _consistent(self) -> Playbook:
        for i, trigger in enumerate(self.triggers):
            if isinstance(trigger, ReportTrigger) and self.correlation is None:
                raise FieldProblem(
                    "a report trigger needs 'correlation' (radius_m, window_min) at the top "
                    "level, to tell which reports are the same incident",
                    "triggers",
                    i,
                )
            for level in trigger_levels(trigger):
                if level not in self.levels:
                    raise FieldProblem(
                        f"this {trigger.kind} trigger can start level {level!r}, "
                        f"which has no entry under 'levels'",
                        "triggers",
                        i,
                    )
        return self

    def actions_at(self, level: str) -> LevelActions:
        """The actions of `level`; 'watch' has none."""
        return self.levels.get(level, LevelActions())  # type: ignore[call-overload]

    def dispatch_for(self, level: str, skill: str) -> DispatchAction | None:
        """The dispatch action of `level` that sends crews with `skill`."""
        return next((a for a in self.actions_at(level).dispatch if a.skill == skill), None)


def trigger_levels(trigger: WarningTrigger | ThresholdTrigger | ReportTrigger) -> list[str]:
    """Every level this trigger can put an incident at."""
    if isinstance(trigger, WarningTrigger):
        first = level_rank(trigger.min_level)
        return [
            lvl
            for lvl in LEVEL_ORDER
            if level_rank(lvl) >= first and lvl in ("blue", "yellow", "orange", "red")
        ]
    return [trigger.level]

"""The playbook format: what duty officers write, as a typed model.

Unknown keys are errors (a typo must not silently disable an action). See
docs/playbooks.md for the format explained for the people who write them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Level = Literal["routine", "blue", "yellow", "orange", "red"]
LEVEL_ORDER: tuple[str, ...] = ("routine", "blue", "yellow", "orange", "red")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Names(_Strict):
    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)


class ReportTrigger(_Strict):
    kind: Literal["report"]
    category: str = Field(min_length=1, description="Open311 service_code, e.g. fallen_tree")
    level: Level = "routine"


class Correlation(_Strict):
    """Reports this close in space and time are the same incident."""

    radius_m: float = Field(gt=0, le=50_000)
    window_min: float = Field(gt=0, le=7 * 24 * 60)


class DispatchAction(_Strict):
    skill: str = Field(min_length=1)
    crews: int = Field(default=1, ge=1, le=50)
    ack_within_min: float = Field(default=10, gt=0, le=24 * 60)
    checklist: tuple[str, ...] = ()


class LevelActions(_Strict):
    dispatch: tuple[DispatchAction, ...] = ()


class Resolution(_Strict):
    when: Literal["all_tasks_done", "dispatcher"] = "all_tasks_done"


class Playbook(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    version: int = Field(ge=1)
    name: Names
    owner: str = Field(min_length=1)
    source: str = Field(min_length=1, description="Where the thresholds and steps come from")
    triggers: tuple[ReportTrigger, ...] = Field(min_length=1)
    correlation: Correlation
    levels: dict[Level, LevelActions] = Field(min_length=1)
    resolution: Resolution = Resolution()

    @field_validator("levels")
    @classmethod
    def _levels_in_order(cls, levels: dict[str, LevelActions]) -> dict[str, LevelActions]:
        names = list(levels)
        if names != sorted(names, key=LEVEL_ORDER.index):
            raise ValueError(f"levels must be listed in order {', '.join(LEVEL_ORDER)}")
        return levels

    @model_validator(mode="after")
    def _trigger_levels_exist(self) -> Playbook:
        for trigger in self.triggers:
            if trigger.level not in self.levels:
                raise ValueError(
                    f"trigger for {trigger.category!r} starts at level {trigger.level!r}, "
                    f"which has no actions under 'levels'"
                )
        return self

    def actions_at(self, level: str) -> LevelActions:
        return self.levels[level]  # type: ignore[index]

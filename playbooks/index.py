"""Playbooks indexed by what starts them: by warning event, by (metric, window) and by
report category, so the cost of matching does not grow with playbooks that cannot
match."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from playbooks.model import Playbook, ReportTrigger, ThresholdTrigger, WarningTrigger


@dataclass(frozen=True)
class _Hit:
    playbook: Playbook
    trigger: WarningTrigger | ThresholdTrigger | ReportTrigger


class PlaybookIndex:
    def __init__(self, playbooks: Iterable[Playbook]) -> None:
        self.playbooks = {p.id: p for p in playbooks}
        self._warnings: dict[str, list[_Hit]] = {}
        self._thresholds: dict[tuple[str, int], list[_Hit]] = {}
        self._reports: dict[str, list[_Hit]] = {}
        for playbook in sorted(self.playbooks.values(), key=lambda p: p.id):
            for trigger in playbook.triggers:
                hit = _Hit(playbook, trigger)
                if isinstance(trigger, WarningTrigger):
                    self._warnings.setdefault(trigger.event, []).append(hit)
                elif isinstance(trigger, ThresholdTrigger):
                    key = (trigger.metric, trigger.window_h)
                    self._thresholds.setdefault(key, []).append(hit)
                else:
                    self._reports.setdefault(trigger.category, []).append(hit)

    def report_categories(self) -> list[str]:
        return sorted(self._reports)

    def for_report(self, category: str) -> Playbook | None:
        hits = self._reports.get(category)
        return hits[0].playbook if hits else None

    def warning_hits(self, event: str) -> list[_Hit]:
        return self._warnings.get(event, [])

    def threshold_hits(self, metric: str, window_h: int) -> list[_Hit]:
        return self._thresholds.get((metric, window_h), [])

"""Which playbook answers an event. Pure; indexed by trigger kind and category so the
cost of a match does not grow with playbooks that cannot match."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from playbooks.model import Playbook, ReportTrigger


@dataclass(frozen=True)
class ReportMatch:
    playbook: Playbook
    trigger: ReportTrigger


class PlaybookIndex:
    def __init__(self, playbooks: Iterable[Playbook]) -> None:
        self.playbooks = {p.id: p for p in playbooks}
        self._by_category: dict[str, list[ReportMatch]] = {}
        for playbook in sorted(self.playbooks.values(), key=lambda p: p.id):
            for trigger in playbook.triggers:
                self._by_category.setdefault(trigger.category, []).append(
                    ReportMatch(playbook, trigger)
                )

    def for_report(self, category: str) -> ReportMatch | None:
        """The playbook for a citizen report category (first by id if several)."""
        matches = self._by_category.get(category)
        return matches[0] if matches else None

    def report_categories(self) -> list[str]:
        return sorted(self._by_category)

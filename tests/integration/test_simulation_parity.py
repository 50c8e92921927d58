"""The dry run is the real run. `pingan playbooks simulate` hands events, in outbox
order, to the worker's own handlers; the worker runs one agent per topic, each taking
its own topic's events as they come. Fed the same events, the two orders must leave
the same incidents, levels, assignments and messages, or a duty officer's dry run
would not show what the system will do."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from sqlalchemy import select

from pingan.core import topics
from pingan.crews import load_roster
from pingan.settings import PROJECT_ROOT, Settings
from pingan.simulation import DryRun, Outcome, dry_run, parse_events
from pingan.store.schema import outbox
from playbooks.index import PlaybookIndex

STORM = PROJECT_ROOT / "playbooks" / "examples" / "snowstorm-2026-01.yaml"
# A citywide red gale: every district's fallen-tree incident goes red, one crew
# answers and the others stay silent (escalation to the next crews and the leaders);
# a citizen's fallen tree waits, held, while the red warning is in force.
CITYWIDE_RED = """
- at: "2026-03-10T02:00:00+08:00"
  kind: warning
  id: LH-20260310-DF01
  msg_type: Alert
  event: gale
  level: red
  districts: [yuanhui, yancheng, shaoling, jingkai, xicheng, wuyang, linying]
  expires: "2026-03-10T12:00:00+08:00"
- {at: "2026-03-10T02:04:00+08:00", kind: crew, crew: tree-yuanhui-2, action: ack}
- {at: "2026-03-10T02:30:00+08:00", kind: report, category: fallen_tree,
   lat: 33.5712, long: 114.0105}
- {at: "2026-03-10T02:50:00+08:00", kind: crew, crew: tree-yuanhui-2, action: on_scene}
- {at: "2026-03-10T04:00:00+08:00", kind: tick}
"""

# The order the worker's agents may take them in: each its own topic, here starting
# from the far end of the pipeline, so every handoff waits a round.
AGENT_ROUNDS = (
    topics.CREW_EVENTS,
    topics.NOTIFICATIONS,
    topics.SENDS_URGENT,
    topics.SENDS_ROUTINE,
    topics.INCIDENTS,
    topics.WEATHER,
    topics.REPORTS,
)


class AgentOrder(DryRun):
    """The same handlers, taken per topic as the worker's agents take them."""

    def drain(self, now: Any) -> None:
        done: set[int] = set()
        while True:
            progressed = False
            for topic in AGENT_ROUNDS:
                with self.store.read() as conn:
                    rows = conn.execute(
                        select(outbox.c.id, outbox.c.payload)
                        .where(outbox.c.topic == topic)
                        .order_by(outbox.c.id)
                    ).all()
                for row in rows:
                    if row.id not in done:
                        done.add(row.id)
                        progressed = True
                        self._handle(topic, dict(row.payload), now)
            if not progressed:
                return


def _run(kind: type[DryRun], text: str, index: PlaybookIndex) -> Outcome:
    events = parse_events(text, "scenario.yaml")
    with dry_run(index, load_roster(Settings().roster_file), events[0].at) as plain:
        run = kind(plain.store, index)
        for event in events:
            run.feed(event)
        run.run_until(events[-1].at)
        return run.outcome()


@pytest.mark.parametrize("scenario", ["recorded snowstorm", "citywide red, silent crews"])
def test_simulation_and_agent_order_agree(scenario: str, index: PlaybookIndex) -> None:
    text = STORM.read_text(encoding="utf-8") if scenario == "recorded snowstorm" else CITYWIDE_RED
    simulated, live = _run(DryRun, text, index), _run(AgentOrder, text, index)
    assert simulated.incidents == live.incidents
    assert Counter(simulated.assignments) == Counter(live.assignments)
    assert Counter(simulated.messages) == Counter(live.messages)
    # Not an empty agreement: the scenario did what it is about.
    assert simulated.assignments and simulated.messages
    if scenario == "citywide red, silent crews":
        levels = {level for _, playbook, level, _, _ in simulated.incidents if playbook}
        assert "red" in levels
        states = Counter(state for _, _, state in simulated.assignments)
        assert states["timed_out"] > 0 and states["on_scene"] == 1
        held = [i for i in simulated.incidents if i[2] == "routine"]
        assert held and all(status == "open" for _, _, _, status, _ in held)

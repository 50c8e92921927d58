"""`pingan playbooks simulate` over the recorded snowstorm prints the plan documented
in docs/examples/snowstorm-plan.txt, and touches nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pingan.settings import PROJECT_ROOT
from pingan.simulation import EventsFileError, parse_events

STORM = PROJECT_ROOT / "playbooks" / "examples" / "snowstorm-2026-01.yaml"
PLAN = PROJECT_ROOT / "docs" / "examples" / "snowstorm-plan.txt"


def _pingan(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PINGAN_")}
    env["PINGAN_CONFIG"] = str(cwd / "absent.toml")
    return subprocess.run(
        [sys.executable, "-m", "pingan", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=60,
    )


def test_recorded_storm_tells_the_storms_story(tmp_path: Path) -> None:
    done = _pingan("playbooks", "simulate", "snow-removal", "--events", str(STORM), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    plan = done.stdout
    # The storm's story, in order: open on the forecast, upgrade on the warnings
    # (never a second incident for Yuanhui), resolve on cancel and on clearing.
    assert (
        plan.count("incident.opened incident 1 playbook=snow-removal, version=1, level=blue") == 1
    )
    assert "incident.upgraded incident 1 from=blue, to=yellow" in plan
    assert "incident.upgraded incident 1 from=yellow, to=orange" in plan
    assert (
        "incident.resolved incident 2 from=open, reason=warning LH-20260120-BS03 cancelled" in plan
    )
    assert "incident.resolved incident 1 from=in_progress, reason=snowfall_mm over 12 h" in plan
    # The crew that answered is not chased; the silent ones are, and the next is sent.
    assert "assignment.timed_out assignment 1 " not in plan
    assert "assignment.timed_out assignment 3 " in plan
    # The level's notify_staff: the supervisor over the crew sent hears the response
    # started, and again at each new level.
    assert "03:00 staff.alerted incident 1 role=supervisor, unit=yuanhui-03" in plan
    assert "事件1（降雪量超阈值）启动橙色级响应" in plan
    # What the crews would read, in Chinese, with their numbers masked.
    assert "message to +86100****0111: 【平安派单】任务3：暴雪黄色预警，郾城区全区。" in plan
    assert plan.index("05:30 warning LH-20260120-BS01") < plan.index("05:40 assignment.timed_out")
    assert not list(tmp_path.iterdir()), "simulate must not write anything"
    assert done.stdout == PLAN.read_text(encoding="utf-8"), "docs/examples is the same run"


def test_simulate_a_playbook_file_being_edited(tmp_path: Path) -> None:
    draft = tmp_path / "snow-draft.yaml"
    text = (PROJECT_ROOT / "playbooks" / "snow-removal.yaml").read_text(encoding="utf-8")
    draft.write_text(
        text.replace("version: 1", "version: 2").replace(
            "        crews: 2\n        per: district\n        equipment: [plough, salt_spreader]",
            "        crews: 3\n        per: district\n        equipment: [plough, salt_spreader]",
        )
    )
    done = _pingan("playbooks", "simulate", str(draft), "--events", str(STORM), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "version=2" in done.stdout
    yellow = done.stdout.split("05:30 warning LH-20260120-BS01")[1].split("07:10 report")[0]
    # 3 crews per district at yellow in the draft, for Yancheng's new incident
    sent = [
        line
        for line in yellow.splitlines()
        if "05:30 assignment.created" in line and "incident_id=2," in line
    ]
    assert len(sent) == 3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- {kind: report}\n", "event 1: missing 'at'"),
        ("- {at: '2026-01-20T05:00', kind: tick}\n", "needs a time zone"),
        ("- {at: '2026-01-20T05:00+08:00', kind: rumour}\n", "kind 'rumour' is not"),
        (
            "- {at: '2026-01-20T05:00+08:00', kind: warning, id: W, event: 暴雪, level: 紫色,"
            " districts: [yuanhui]}\n",
            "level: '紫色' is not blue/yellow/orange/red",
        ),
        ("{}\n", "expected a list of events"),
    ],
)
def test_bad_events_file_is_named(text: str, message: str) -> None:
    with pytest.raises(EventsFileError, match=message):
        parse_events(text, "events.yaml")

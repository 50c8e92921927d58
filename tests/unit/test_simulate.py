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


def test_recorded_storm_produces_the_documented_plan(tmp_path: Path) -> None:
    done = _pingan("playbooks", "simulate", "snow-removal", "--events", str(STORM), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == PLAN.read_text(encoding="utf-8")
    plan = done.stdout
    # The storm's story, in order: open on the forecast, upgrade on the warnings
    # (never a second incident for Yuanhui), resolve on cancel and on clearing.
    assert plan.count("OPEN incident 1: snow-removal v1 at level blue (district yuanhui)") == 1
    assert "UPGRADE incident 1: blue -> yellow" in plan
    assert "UPGRADE incident 1: yellow -> orange" in plan
    assert "RESOLVE incident 2 - warning LH-20260120-BS03 cancelled" in plan
    assert "RESOLVE incident 1 - snowfall_mm over 12 h back to 1.2 in yuanhui" in plan
    assert not list(tmp_path.iterdir()), "simulate must not write anything"


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
    assert "snow-removal v2" in done.stdout
    yellow = done.stdout.split("UPGRADE incident 1: blue -> yellow")[1].split("OPEN incident 2")[0]
    assert yellow.count("dispatch snow_ice crew") == 2  # 3 wanted at yellow, 1 already there


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

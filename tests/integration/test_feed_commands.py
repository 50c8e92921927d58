"""`pingan feeds parse` and `pingan replay` as an operator runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from pingan.store import Store
from pingan.store.schema import outbox, reports, threshold_state, warning_messages

FEEDS = Path(__file__).parent.parent / "data" / "feeds"
CORPUS = Path(__file__).parent.parent / "data" / "cap-corpus"


def pingan(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PINGAN_")}
    env.update(PINGAN_DATA_DIR=str(data_dir), PINGAN_CONFIG=str(data_dir / "absent.toml"))
    return subprocess.run(
        [sys.executable, "-m", "pingan", *args], capture_output=True, text=True, env=env, timeout=60
    )


def test_feeds_parse_prints_normalised_json(tmp_path: Path) -> None:
    done = pingan(
        "feeds", "parse", str(FEEDS / "cma-blizzard-orange-update.cap"), data_dir=tmp_path
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["acts_on"] == {
        "event": "blizzard",
        "msg_type": "Update",
        "level": "orange",
        "districts": ["yuanhui", "yancheng"],
    }
    zh = out["warnings"][0]
    assert (zh["level"], zh["level_from"], zh["lifted"]) == ("orange", "parameter level", False)
    assert (zh["msg_type"], zh["language"], zh["references"]) == (
        "Update",
        "zh-CN",
        ["41110041600000_20260120053000"],
    )
    forecast = json.loads(
        pingan("feeds", "parse", str(FEEDS / "open-meteo-nulls.json"), data_dir=tmp_path).stdout
    )
    assert forecast["type"] == "open-meteo" and forecast["hours"] == 48
    assert forecast["observations"][5]["snowfall_mm"] is None


def test_feeds_parse_rejects_with_reason_and_exit_1(tmp_path: Path) -> None:
    done = pingan("feeds", "parse", str(CORPUS / "xee.atom"), data_dir=tmp_path)
    assert done.returncode == 1
    assert done.stderr.startswith("rejected: refused: the document declares a DTD")
    missing = pingan("feeds", "parse", str(tmp_path / "nope.cap"), data_dir=tmp_path)
    assert missing.returncode == 1 and "cannot read" in missing.stderr


def test_replay_feeds_documents_and_reports_through_the_intake(tmp_path: Path) -> None:
    for name in ("cma-blizzard-yellow.cap", "open-meteo-snow-rising.json"):
        (tmp_path / name).write_bytes((FEEDS / name).read_bytes())
    (tmp_path / "replay.yaml").write_text(
        "- {at_min: 0, open_meteo: open-meteo-snow-rising.json, district: yuanhui}\n"
        "- {at_min: 1, cap: cma-blizzard-yellow.cap}\n"
        "- {at_min: 1, cap: cma-blizzard-yellow.cap}\n"
        "- {at_min: 2, report: {service_code: snow_ice, lat: 33.5734, long: 114.0202}}\n"
        "- {at_min: 2, report: {service_code: snow_ice}}\n",
        encoding="utf-8",
    )
    data = tmp_path / "var"
    done = pingan("replay", str(tmp_path / "replay.yaml"), "--speed", "60", data_dir=data)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "yuanhui snowfall_mm/12h reached at 6" in lines[0]
    assert "41110041600000_20260120053000 Alert blizzard yellow" in lines[1]
    assert lines[2].endswith("already seen")
    assert lines[3].endswith("report #1")
    assert "refused: location: lat/long or address_string is required" in lines[4]
    store = Store(f"sqlite:///{data / 'pingan.db'}")
    with store.read() as conn:
        assert len(conn.execute(select(warning_messages)).all()) == 1
        assert len(conn.execute(select(reports)).all()) == 1
        assert (
            conn.execute(
                select(threshold_state.c.active).where(
                    threshold_state.c.metric == "snowfall_mm", threshold_state.c.window_h == 12
                )
            ).scalar_one()
            == 1
        )
        topics = [r.topic for r in conn.execute(select(outbox.c.topic).order_by(outbox.c.id))]
    assert topics == ["pingan.weather", "pingan.weather", "pingan.intake.reports"]
    store.dispose()

"""The operator's side: the sample alerting rules load in Prometheus's own checker and
name only metrics Ping'an exports; JSON log lines carry a message's key=value pairs as
fields; a log format we do not know is refused at start."""

from __future__ import annotations

import io
import json
import logging
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from pingan.logs import JsonLineFormatter
from pingan.metrics import exposition, watch_store
from pingan.settings import PROJECT_ROOT, SettingsError, load_settings
from pingan.store import Store

RULES = PROJECT_ROOT / "docs" / "ops" / "prometheus-alerts.yml"


def test_alert_rules_load_in_promtool() -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: scripts/ensure-promtool.sh installs it"
    done = subprocess.run(
        [promtool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 10 rules found" in done.stdout


def test_alert_rules_name_only_metrics_we_export(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'm.db'}")
    store.create_schema()
    watch_store(store)
    exported = set(re.findall(r"^# TYPE (\S+) (\w+)", exposition().decode(), re.M))
    names = {name for name, _ in exported} | {
        f"{name}_total" for name, kind in exported if kind == "counter"
    }
    rules = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"][0]["rules"]
    used = {word for rule in rules for word in re.findall(r"\bpingan_[a-z_]+\b", rule["expr"])}
    assert used and used <= names, f"not exported: {sorted(used - names)}"


def _json_lines(emit: object) -> list[dict[str, object]]:
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(JsonLineFormatter())
    logger = logging.getLogger("test.json")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        emit(logger)  # type: ignore[operator]
    finally:
        logger.removeHandler(handler)
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_json_logs_make_a_messages_pairs_fields() -> None:
    [line] = _json_lines(
        lambda log: log.info("crew assigned incident=%s crew=%s note='two words'", 3, "snow-1")
    )
    assert line["level"] == "info" and line["logger"] == "test.json"
    assert line["msg"] == "crew assigned incident=3 crew=snow-1 note='two words'"
    assert (line["incident"], line["crew"], line["note"]) == ("3", "snow-1", "two words")
    assert str(line["ts"]).endswith("Z")


def test_json_logs_keep_their_own_fields_and_redact_links() -> None:
    [line] = _json_lines(
        lambda log: log.warning("level=fake msg=fake sent https://x.example/c/abc.def.ghi")
    )
    assert line["level"] == "warning" and line["msg"] != "fake"
    assert "abc.def.ghi" not in json.dumps(line)


def test_an_unknown_log_format_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="log_format = 'xml'"):
        load_settings({"PINGAN_LOG_FORMAT": "xml"}, tmp_path / "absent.toml")
    assert load_settings({"PINGAN_LOG_FORMAT": "json"}, tmp_path / "absent.toml").log_format == (
        "json"
    )


def test_the_ready_line_never_prints_the_database_password(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """It lands in every container's log (the compose rehearsal read it there)."""
    from pingan.runtime.supervisor import _print_ready

    settings = load_settings(
        {"PINGAN_DATABASE_URL": "postgresql+psycopg://pingan:s3cret-pw@postgres:5432/pingan"}
    )
    _print_ready(settings, "http://0.0.0.0:8080", "kafka:9092", False, None, None)
    line = capsys.readouterr().out
    assert "s3cret-pw" not in line
    assert "database postgresql+psycopg://pingan:***@postgres:5432/pingan" in line

"""What an operator sees of a running deployment, through the real processes: the
HTTP process's and the worker's /metrics in Prometheus's text format, moving as
reports flow; /readyz that says 503 (and which part) while the broker is hung, and
200 again once it answers."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.harness import Stack, free_port, processes_matching, wait_for

pytestmark = pytest.mark.e2e


def _scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a /metrics page, parsed by Prometheus's own text parser."""
    reply = httpx.get(url, timeout=10)
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/plain; version=")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(reply.text)
        for sample in family.samples
    }


def _value(samples: dict, name: str, **labels: str) -> float:  # type: ignore[type-arg]
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_parse_and_move_as_reports_flow(tmp_path: Path) -> None:
    worker_port = free_port()
    stack = Stack(tmp_path / "data", {"PINGAN_WORKER_METRICS_PORT": str(worker_port)})
    try:
        http_metrics = f"{stack.base_url}/metrics"
        worker_metrics = f"http://127.0.0.1:{worker_port}/metrics"
        before = _scrape(http_metrics)
        assert _value(before, "pingan_database_up") == 1
        assert _value(before, "pingan_lease_held", lease="relay", holder=_holder(before)) == 1
        worker_before = wait_for(lambda: _scrape(worker_metrics), what="the worker's /metrics")

        for n in range(3):
            place = {"lat": 33.5712 + n * 0.01, "long": 114.0153}
            reply = stack.report(**place, description=f"树倒了 {n}", phone=f"+861380000000{n}")
            assert reply.status_code == 200, reply.text

        def citizens_told() -> dict:  # type: ignore[type-arg]
            now = _scrape(http_metrics)
            told = sum(  # every channel (the local outbox stands in for SMS here)
                value
                for (name, labels), value in now.items()
                if name == "pingan_messages" and dict(labels)["status"] == "sent"
            )
            return now if told >= 3 else {}

        after = wait_for(citizens_told, timeout=60, what="three acknowledgements in /metrics")
        assert _value(after, "pingan_reports_unlinked") == 0
        worker_after = _scrape(worker_metrics)
        assert _value(worker_after, "pingan_events_processed_total", agent="incidents") >= (
            _value(worker_before, "pingan_events_processed_total", agent="incidents") + 3
        )
        assert _value(worker_after, "pingan_events_processed_total", agent="notify") >= 3
    finally:
        stack.stop()


def _holder(samples: dict) -> str:  # type: ignore[type-arg]
    holders = [dict(labels)["holder"] for name, labels in samples if name == "pingan_lease_held"]
    assert holders, "no lease holder in /metrics"
    return holders[0]


def test_readyz_says_which_part_is_down_and_recovers(tmp_path: Path) -> None:
    stack = Stack(tmp_path / "data")
    try:
        ready = wait_for(
            lambda: stack.http.get("/readyz").status_code == 200, timeout=60, what="ready"
        )
        assert ready
        [broker] = processes_matching(f"tcp://{stack.broker_bootstrap}")
        os.kill(broker, signal.SIGSTOP)  # hung: its kernel still accepts connections
        try:
            down = wait_for(
                lambda: (r := stack.http.get("/readyz")).status_code == 503 and r,
                timeout=30,
                what="503 while the broker is hung",
            )
            checks = json.loads(down.text)["checks"]
            assert checks["broker"]["ok"] is False and checks["database"]["ok"] is True
        finally:
            os.kill(broker, signal.SIGCONT)
        wait_for(
            lambda: stack.http.get("/readyz").status_code == 200,
            timeout=60,
            what="200 once the broker answers again",
        )
    finally:
        stack.stop()

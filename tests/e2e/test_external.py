"""The scaled shape on one machine: an external Kafka-compatible broker named by
PINGAN_KAFKA_URL (none started by us), PostgreSQL named by PINGAN_DATABASE_URL, and
`pingan http` and `pingan worker` as separate processes, as docker-compose runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pingan.runtime.broker import resolve_broker_bin, start_embedded_broker
from pingan.runtime.children import stop
from tests.conftest import fresh_postgres_database
from tests.e2e.harness import Stack, processes_matching, wait_for

pytestmark = pytest.mark.e2e


def test_external_broker_and_postgres_with_separate_worker(tmp_path: Path) -> None:
    broker = start_embedded_broker(resolve_broker_bin(""), tmp_path / "broker.log")
    try:
        with fresh_postgres_database() as database_url:
            env = {
                "PINGAN_KAFKA_URL": f"kafka://{broker.bootstrap}",
                "PINGAN_DATABASE_URL": database_url,
            }
            http = Stack(tmp_path / "http", env, command="http")
            worker_env = {k: v for k, v in os.environ.items() if not k.startswith("PINGAN_")}
            worker_env.update(env, PINGAN_DATA_DIR=str(tmp_path / "worker"))
            worker = subprocess.Popen(
                [sys.executable, "-m", "pingan", "worker"],
                env=worker_env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                assert f"broker {broker.bootstrap} external" in http.output()
                # No broker of its own: none among its children (other tests may run brokers).
                assert processes_matching("broker --listener-url", parent=http.proc.pid) == []
                assert http.report(lat=33.5712, long=114.0153).status_code == 200
                incident = wait_for(
                    lambda: [i for i in http.incidents() if i["status"] == "dispatched"],
                    timeout=60,
                    what="dispatched on PostgreSQL via the external broker",
                )
                assert incident[0]["playbook"]["id"] == "fallen-trees"

                # A second `pingan http` (a scaled service) stands by as relay and
                # takes over when the first stops; nothing waits in its outbox.
                second = Stack(tmp_path / "http2", env, command="http")
                try:
                    wait_for(
                        lambda: "relay standing by" in second.output(), what="second relay waits"
                    )
                    assert http.stop() == 0
                    wait_for(
                        lambda: "relay publishing" in second.output(),
                        timeout=30,
                        what="second relay takes over",
                    )
                    assert second.report(lat=33.6000, long=114.0600).status_code == 200
                    wait_for(
                        lambda: (
                            len([i for i in second.incidents() if i["status"] == "dispatched"]) == 2
                        ),
                        timeout=60,
                        what="a report through the second service dispatched",
                    )
                finally:
                    assert second.stop() == 0
            finally:
                stop(worker, 20)
                http.stop()
    finally:
        broker.stop()

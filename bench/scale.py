"""One worker against three, on the scaled shape: an external broker, PostgreSQL,
`pingan http`, and N `pingan worker` processes on 6 partitions (as docker-compose.yml
runs them). The same burst of reports through each, HTTP to incident, the two
configurations interleaved (these machines are noisy), so the ratio is side by side.

PostgreSQL: PINGAN_DATABASE_URL names the server, else the machine's own is started
(scripts/test-postgres.sh), as the suite does."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from statistics import median
from typing import Any

from bench.storm import _burst, _env, _wait_linked, city_points, observing
from pingan.runtime.broker import resolve_broker_bin, start_embedded_broker
from pingan.settings import PROJECT_ROOT
from pingan.store import Store, component_state
from tests.conftest import fresh_postgres_database
from tests.e2e.harness import Stack, wait_for

REPORTS = 1_000
ROUNDS = 2  # each configuration this many times, interleaved
PARTITIONS = "6"


def _postgres_server() -> str:
    configured = os.environ.get("PINGAN_DATABASE_URL")
    if configured:
        return configured
    done = subprocess.run(
        [str(PROJECT_ROOT / "scripts" / "test-postgres.sh")],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return done.stdout.strip()


@contextmanager
def _deployment(workers: int, server: str) -> Iterator[Stack]:
    """`pingan http` and `workers` × `pingan worker` on a fresh database and broker."""
    with (
        fresh_postgres_database(server, prefix="pingan_scale") as url,
        tempfile.TemporaryDirectory() as scratch,
    ):
        broker = start_embedded_broker(resolve_broker_bin(""), Path(scratch) / "broker.log")
        env = _env(url) | {
            "PINGAN_KAFKA_URL": f"kafka://{broker.bootstrap}",
            "PINGAN_TOPIC_PARTITIONS": PARTITIONS,
        }
        procs: list[subprocess.Popen[bytes]] = []
        stack = Stack(Path(scratch) / "data", env, command="http")
        stack.database_url = url  # type: ignore[attr-defined]
        try:
            worker_env = {k: v for k, v in os.environ.items() if not k.startswith("PINGAN_")}
            worker_env |= env | {
                "PINGAN_DATA_DIR": str(stack.data_dir),
                "PINGAN_CONFIG": str(stack.data_dir / "absent.toml"),
            }
            for n in range(workers):
                log = open(Path(scratch) / f"worker-{n}.log", "wb")  # noqa: SIM115
                procs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "pingan", "worker"],
                        env=worker_env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
            store = Store(url)
            wait_for(
                lambda: component_state(store, "worker") == "ready",
                timeout=120,
                what=f"{workers} workers ready",
            )
            time.sleep(3 * workers)  # let the group settle: each join rebalances it
            yield stack
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
            stack.stop()
            broker.stop()


def _burst_rate(workers: int, server: str, seed: int) -> float:
    with _deployment(workers, server) as stack, observing(stack) as observer:
        start = time.monotonic()
        ids = asyncio.run(_burst(stack.base_url, city_points(REPORTS, seed)))
        if not _wait_linked(observer, ids, 300):
            return 0.0
        return REPORTS / (time.monotonic() - start)


def scale() -> list[dict[str, Any]]:
    server = _postgres_server()
    rates: dict[int, list[float]] = {1: [], 3: []}
    for round_ in range(ROUNDS):
        for workers in (1, 3) if round_ % 2 == 0 else (3, 1):
            rates[workers].append(_burst_rate(workers, server, seed=100 + round_))
    one, three = median(rates[1]), median(rates[3])
    common = {"reports": REPORTS, "partitions": int(PARTITIONS), "database": "postgresql"}
    return [
        {
            "bench": "scaled_reports_per_s_1_worker",
            "value": round(one, 1),
            "unit": "reports/s",
            "runs": [round(r, 1) for r in rates[1]],
            **common,
        },
        {
            "bench": "scaled_reports_per_s_3_workers",
            "value": round(three, 1),
            "unit": "reports/s",
            "runs": [round(r, 1) for r in rates[3]],
            **common,
        },
        {
            "bench": "scaled_3_vs_1_workers",
            "value": round(three / one, 3) if one else None,
            "unit": "ratio",
            "cores": os.cpu_count(),
            **common,
        },
    ]

"""`make demo` runs `pingan demo`: it must reach "ready" and every scenario incident
must reach 'resolved' (run faster here, and told to stop at the end)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.harness import free_port

pytestmark = pytest.mark.e2e


def test_demo_reaches_ready_and_resolves_every_incident(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PINGAN_")}
    env.update(
        PINGAN_DATA_DIR=str(tmp_path),
        PINGAN_HTTP_PORT=str(free_port()),
        PINGAN_CONFIG=str(tmp_path / "absent.toml"),
    )
    done = subprocess.run(
        [sys.executable, "-m", "pingan", "demo", "--exit-after-scenario", "--speed", "4"],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr[-3000:]
    assert out.startswith("ready: http://127.0.0.1:")
    # Generated credentials are printed on first start (none were configured).
    assert "API token (Authorization: Bearer" in out and "Open311 api_key:" in out
    assert (tmp_path / "api_token").read_text().strip() in out
    assert (
        "demo: scenario complete: 6 reports, 6 incidents (fallen-trees, flood-drainage, "
        "snow-removal), all resolved"
    ) in out
    # Snow: the warning opens a district incident, the update raises it, the cancel ends it.
    # (Crews are on it before the demo's first look: the yellow incident shows dispatched.)
    assert "(snow-removal, yellow, yuanhui) is dispatched" in out
    assert "(snow-removal, orange, yuanhui) is dispatched" in out
    assert "(snow-removal, orange, yuanhui) is resolved" in out
    assert "(flood-drainage, routine, site) is resolved" in out
    assert out.count("(fallen-trees, routine, site) is resolved") == 3

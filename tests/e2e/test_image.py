"""The image's install, without Docker: the files the Dockerfile copies, installed its
way (the locked dependencies, then the package, no extras) into a fresh virtual
environment outside the source tree; `pingan http` from there serves every surface —
the console, its map's files, the Open311 description — reading nothing from the
source tree."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import httpx
import pytest

from pingan.runtime.broker import resolve_broker_bin, start_embedded_broker
from pingan.settings import PROJECT_ROOT
from tests.e2e.harness import free_port, wait_for

pytestmark = pytest.mark.e2e
DOCKERFILE = (PROJECT_ROOT / "Dockerfile").read_text()


def _copied() -> list[tuple[str, str]]:
    """(source, destination) of every COPY line (sources space-separated)."""
    found = []
    for line in re.findall(r"^COPY (.+)$", DOCKERFILE, re.M):
        *sources, destination = line.split()
        found += [(source, destination) for source in sources]
    return found


def _pip_steps() -> list[list[str]]:
    """The Dockerfile's `pip install` commands, as argument lists."""
    return [step.split() for step in re.findall(r"pip install ([^&\n\\]+)", DOCKERFILE)]


def test_the_images_install_serves_every_surface(tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    for source, destination in _copied():
        target = (
            app / destination / Path(source).name
            if destination.endswith("/")
            else app / destination
        )
        if (PROJECT_ROOT / source).is_dir():
            shutil.copytree(
                PROJECT_ROOT / source, target, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(PROJECT_ROOT / source, target)
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    for step in _pip_steps():
        done = subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", *step],
            cwd=app,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert done.returncode == 0, done.stderr[-2000:]
    shutil.rmtree(app)  # served from the installed package, not from a copy of the tree

    broker = start_embedded_broker(resolve_broker_bin(""), tmp_path / "broker.log")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PINGAN_", "PYTHON"))}
    env |= {
        "PINGAN_KAFKA_URL": f"kafka://{broker.bootstrap}",
        "PINGAN_DATA_DIR": str(tmp_path / "data"),
        "PINGAN_HTTP_PORT": str(port),
        "PINGAN_CONFIG": str(tmp_path / "absent.toml"),
        "PINGAN_API_TOKENS": "image-test-token",
    }
    auth = {"Authorization": "Bearer image-test-token"}
    server = subprocess.Popen(
        [str(env_dir / "bin" / "pingan"), "http"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"

        def up() -> bool:
            try:
                return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
            except httpx.TransportError:
                assert server.poll() is None, server.stdout.read() if server.stdout else ""
                return False

        wait_for(up, timeout=90, what="pingan http from the installed package")
        console = httpx.get(f"{base}/console/", headers=auth, timeout=10)
        assert console.status_code == 200 and "<html" in console.text.lower()
        for name in re.findall(r"/console/static/([\w.-]+)", console.text):
            served = httpx.get(f"{base}/console/static/{name}", headers=auth, timeout=10)
            assert served.status_code == 200, name
        described = httpx.get(f"{base}/open311/v2/openapi.yaml", timeout=10)
        assert described.status_code == 200 and described.text.startswith("openapi:")
        found = subprocess.run(
            [str(env_dir / "bin" / "python"), "-c", "import pingan; print(pingan.__file__)"],
            capture_output=True,
            text=True,
            cwd=tmp_path,
        ).stdout
        assert str(env_dir) in found, f"not the installed package: {found}"
    finally:
        server.terminate()
        server.wait(timeout=30)
        broker.stop()
    assert sys.prefix not in found

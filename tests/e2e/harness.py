"""Start the real `pingan run` (broker child, worker child, HTTP, SQLite) as a
subprocess, the way an operator does, and talk to it over HTTP."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
from aiohttp import web

from pingan.store import Store

T = TypeVar("T")
API_TOKEN = "e2e-api-token"
OPEN311_KEY = "e2e-open311-key"
READY_TIMEOUT_S = 90


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(
    predicate: Callable[[], T], timeout: float = 30, what: str = "condition", every: float = 0.2
) -> T:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value: {last!r}")


def processes_matching(needle: str, parent: int | None = None) -> list[int]:
    """PIDs whose command line contains `needle` (to find orphans); with `parent`, only
    that process's children (other stacks may run on the machine at the same time)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="ignore")
            status = (entry / "status").read_text()
        except OSError:
            continue
        if needle in cmdline and "State:\tZ" not in status:
            if parent is not None and f"PPid:\t{parent}\n" not in status:
                continue
            found.append(int(entry.name))
    return found


class Stack:
    def __init__(
        self,
        data_dir: Path,
        extra_env: dict[str, str] | None = None,
        command: str = "run",
        args: tuple[str, ...] = (),
    ) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("PINGAN_")}
        env.update(
            {
                "PINGAN_DATA_DIR": str(data_dir),
                "PINGAN_HTTP_PORT": str(self.port),
                "PINGAN_API_TOKENS": API_TOKEN,
                "PINGAN_OPEN311_KEYS": OPEN311_KEY,
                "PINGAN_CONFIG": str(data_dir / "absent.toml"),
                **(extra_env or {}),
            }
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pingan", command, *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        ready_line = None
        if self._ready.wait(READY_TIMEOUT_S):
            ready_line = next((line for line in self.lines if line.startswith("ready:")), None)
        if ready_line is None:
            self.kill()
            raise AssertionError("stack not ready:\n" + "".join(self.lines[-40:]))
        ready = ready_line
        self.broker_bootstrap = re.search(r"broker (\S+)", ready).group(1)  # type: ignore[union-attr]
        self.http = httpx.Client(base_url=self.base_url, timeout=10)
        self.auth = {"Authorization": f"Bearer {API_TOKEN}"}

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            if line.startswith("ready:"):
                self._ready.set()
        self._ready.set()

    @property
    def store(self) -> Store:
        return Store(f"sqlite:///{self.data_dir / 'pingan.db'}")

    def report(self, **fields: Any) -> httpx.Response:
        form = {"api_key": OPEN311_KEY, "service_code": "fallen_tree", **fields}
        try:
            return self.http.post(
                "/open311/v2/requests.json", data={k: str(v) for k, v in form.items()}
            )
        except httpx.TransportError as exc:
            alive = "running" if self.proc.poll() is None else f"exited {self.proc.returncode}"
            raise AssertionError(
                f"stack unreachable ({exc}; process {alive}):\n" + "".join(self.lines[-60:])
            ) from None

    def incident(self, incident_id: int) -> dict[str, Any]:
        reply = self.http.get(f"/api/incidents/{incident_id}", headers=self.auth)
        reply.raise_for_status()
        return reply.json()

    def incidents(self) -> list[dict[str, Any]]:
        reply = self.http.get("/api/incidents", headers=self.auth)
        reply.raise_for_status()
        return reply.json()["incidents"]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 40) -> int:
        self.http.close()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("stack did not stop:\n" + "".join(self.lines[-40:])) from None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def output(self) -> str:
        return "".join(self.lines)


@contextmanager
def serving(app: web.Application, port: int | None = None) -> Iterator[str]:
    """`app` on 127.0.0.1 in a thread and event loop of its own, as a separate machine
    (a provider, a load balancer, the HTTP edge under test) would be: the caller's load
    never starves its answers, nor the other way round."""
    port = port or free_port()
    loop, ready = asyncio.new_event_loop(), threading.Event()
    runner = web.AppRunner(app, shutdown_timeout=0.5, access_log=None)

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
        ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def twilio_message_page(found: list[dict[str, Any]], request: web.Request) -> web.Response:
    """A page of Twilio's Messages list (GET .../Messages.json), newest first, as the
    fakes standing in for Twilio answer the SDK's lookups."""
    size = int(request.query.get("PageSize", 50))
    return web.json_response(
        {
            "messages": found[:size],
            "end": max(min(len(found), size) - 1, 0),
            "first_page_uri": request.path_qs,
            "next_page_uri": None,
            "page": 0,
            "page_size": size,
            "previous_page_uri": None,
            "start": 0,
            "uri": request.path_qs,
        }
    )

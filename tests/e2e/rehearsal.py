"""The pieces of a compose rehearsal on one machine (tests/e2e/test_compose_rehearsal.py):
docker-compose.yml's environment for a service, resolved the way compose resolves it
from a .env file; the pingan services as processes; a round-robin reverse proxy standing
for the public URL; and a Twilio that counts what it was asked to send."""

from __future__ import annotations

import asyncio
import base64
import itertools
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiohttp import web
from twilio.request_validator import RequestValidator

from pingan.settings import PROJECT_ROOT
from tests.e2e.harness import twilio_message_page

COMPOSE_FILE = PROJECT_ROOT / "docker-compose.yml"

# ---- docker-compose.yml's environment ------------------------------------------------

# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}, ${VAR:+alt},
# $VAR, and $$ for a dollar sign: compose's interpolation (one level, as compose does).
_VARIABLE = re.compile(
    r"\$(?:(?P<dollar>\$)|(?P<bare>[A-Za-z_][A-Za-z0-9_]*)"
    r"|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\})"
)


class ComposeError(ValueError):
    """What `docker compose up` would refuse to start with."""


def interpolate(text: str, dotenv: Mapping[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        if match["dollar"]:
            return "$"
        name = match["bare"] or match["name"]
        op, arg = match["op"], match["arg"] or ""
        value = dotenv.get(name)
        unset, empty = value is None, not value
        if op == ":-":
            return arg if empty else str(value)
        if op == "-":
            return arg if unset else str(value)
        if op in (":?", "?") and (empty if op == ":?" else unset):
            raise ComposeError(f"required variable {name} is missing a value: {arg}")
        if op == ":+":
            return "" if empty else arg
        if op == "+":
            return "" if unset else arg
        return value or ""

    return _VARIABLE.sub(one, text)


def compose_environment(service: str, dotenv: Mapping[str, str]) -> dict[str, str]:
    """The environment docker compose gives `service`'s containers: the service's
    `environment` (with the `x-pingan-env` anchor merged in by YAML), every value
    interpolated from `dotenv` as compose reads .env."""
    compose = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    raw = compose["services"][service].get("environment") or {}
    if isinstance(raw, list):  # the other spelling: ["NAME=value", ...]
        raw = dict(item.split("=", 1) for item in raw)
    return {name: interpolate(str(value), dotenv) for name, value in raw.items()}


def compose_command(service: str) -> list[str]:
    compose = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    return [str(part) for part in compose["services"][service]["command"]]


# ---- the pingan services as processes -----------------------------------------------


class Service:
    """One container of a compose service, as a process: the compose command (its
    `pingan` from this virtualenv), the environment given, its output in a log file.
    `kill` is `docker kill -s KILL`; `start` again is compose's `restart: unless-stopped`."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], workdir: Path) -> None:
        self.name, self.env, self.workdir = name, env, workdir
        program = Path(sys.executable).parent / command[0]
        self.argv = [str(program), *command[1:]]
        self.log = workdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        # What a container has: the image's PATH and the compose environment, no more.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PINGAN_")}
        env.update(self.env)
        with self.log.open("ab") as out:
            out.write(f"---- start {self.starts + 1} ----\n".encode())
            out.flush()
            self.proc = subprocess.Popen(
                self.argv, env=env, cwd=self.workdir, stdout=out, stderr=subprocess.STDOUT
            )
        self.starts += 1

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL, and reaped (a zombie would still look alive to a lease's owner check)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def stopped(self, timeout: float = 40) -> int | None:
        """After `terminate`: the exit code, or None if it had to be killed (compose's
        stop timeout)."""
        if self.proc is None:
            return None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            return None

    def output(self) -> str:
        if not self.log.exists():
            return "(never started)"
        return self.log.read_text(encoding="utf-8", errors="replace")


def stop_all(services: list[Service], timeout: float = 40) -> dict[str, int | None]:
    """`docker compose stop`: SIGTERM to every container at once, SIGKILL to those still
    running after the timeout. Exit codes by name (None: killed)."""
    for service in services:
        service.terminate()
    return {service.name: service.stopped(timeout) for service in services}


# ---- servers on their own thread and event loop -------------------------------------


# ---- the load balancer in front of `http` -------------------------------------------

_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "te",
    "trailer",
    "host",
    "content-length",
    "content-encoding",
}


class RoundRobinProxy:
    """The public URL: each request to the next `http` in turn. A backend that refuses
    the connection (killed, restarting) is skipped, as a load balancer's passive health
    check does; a request that reached a backend which then died is answered 502, not
    sent again (it may have been applied)."""

    def __init__(self, backends: list[str]) -> None:
        self.backends = backends
        self._turn = itertools.count()
        self.served: dict[str, int] = {b: 0 for b in backends}
        self.refused_connections = 0
        self.app = web.Application(client_max_size=4 * 1024 * 1024)
        self.app.router.add_route("*", "/{tail:.*}", self.forward)
        self.app.on_startup.append(self._open)
        self.app.on_cleanup.append(self._close)

    async def _open(self, app: web.Application) -> None:
        # A fresh connection per request: a pooled one to a killed backend would fail
        # after the request was written, which reads as "may have been applied".
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(force_close=True),
            timeout=aiohttp.ClientTimeout(total=30),
            auto_decompress=True,
        )

    async def _close(self, app: web.Application) -> None:
        await self.session.close()

    async def forward(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        headers["X-Forwarded-Proto"] = "http"
        first = next(self._turn)
        for n in range(len(self.backends)):
            backend = self.backends[(first + n) % len(self.backends)]
            try:
                async with self.session.request(
                    request.method,
                    backend + request.path_qs,
                    headers=headers,
                    data=body,
                    allow_redirects=False,
                ) as reply:
                    content = await reply.read()
                    out = {k: v for k, v in reply.headers.items() if k.lower() not in _HOP_BY_HOP}
                    self.served[backend] += 1
                    return web.Response(status=reply.status, body=content, headers=out)
            except aiohttp.ClientConnectorError:
                self.refused_connections += 1
                continue  # never reached it: the next one
            except (aiohttp.ClientError, TimeoutError) as exc:
                return web.Response(status=502, text=f"bad gateway: {exc.__class__.__name__}")
        return web.Response(status=503, text="no backend")


# ---- Twilio, counting ---------------------------------------------------------------


class CountingTwilio:
    """Twilio's Messages resource: create (Basic auth as the account), list by recipient
    newest first (what the sender asks before sending again a message whose attempt was
    cut short), and status callbacks signed with the auth token, 'sent' then 'delivered'
    (retried, as Twilio's edge would, while the public URL answers 5xx or not at all).
    Every message it took is kept, to count copies. Its clock is the deployment's
    (the drill offset included), as a real provider's agrees with ours."""

    def __init__(self, account: str, token: str, clock: Callable[[], datetime]) -> None:
        self.account, self.token, self.clock = account, token, clock
        self.taken: list[dict[str, Any]] = []
        self.callbacks_failed: list[str] = []
        self.callback_log: list[tuple[str, str, int, Any]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        path = f"/2010-04-01/Accounts/{account}/Messages.json"
        self.app = web.Application()
        self.app.router.add_post(path, self.create)
        self.app.router.add_get(path, self.list)
        self.app.on_startup.append(self._open)
        self.app.on_cleanup.append(self._close)

    async def _open(self, app: web.Application) -> None:
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15))

    async def _close(self, app: web.Application) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.session.close()

    def _authorized(self, request: web.Request) -> bool:
        expected = base64.b64encode(f"{self.account}:{self.token}".encode()).decode()
        return request.headers.get("Authorization", "") == f"Basic {expected}"

    async def create(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.json_response({"code": 20003, "status": 401}, status=401)
        form = await request.post()
        now = self.clock()
        sid = f"SM{len(self.taken) + 1:032x}"
        record = {
            "sid": sid,
            "account_sid": self.account,
            "to": str(form["To"]),
            "from": str(form.get("From", "")),
            "messaging_service_sid": str(form.get("MessagingServiceSid", "")) or None,
            "body": str(form["Body"]),
            "status": "accepted" if form.get("MessagingServiceSid") else "queued",
            "date_created": format_datetime(now, usegmt=True),
            "date_updated": format_datetime(now, usegmt=True),
            "direction": "outbound-api",
            "uri": f"/2010-04-01/Accounts/{self.account}/Messages/{sid}.json",
        }
        self.taken.append(record)
        callback = str(form.get("StatusCallback", ""))
        if callback:
            task = asyncio.create_task(self._report(callback, record))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return web.json_response(record, status=201)

    async def list(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.json_response({"code": 20003, "status": 401}, status=401)
        to = request.query.get("To")
        found = [m for m in reversed(self.taken) if to is None or m["to"] == to]
        return twilio_message_page(found, request)

    async def _report(self, url: str, record: dict[str, Any]) -> None:
        validator = RequestValidator(self.token)
        for status in ("sent", "delivered"):
            await asyncio.sleep(0.2)
            params = {
                "MessageSid": record["sid"],
                "MessageStatus": status,
                "AccountSid": self.account,
                "To": record["to"],
            }
            headers = {"X-Twilio-Signature": validator.compute_signature(url, params)}
            for attempt in range(30):
                try:
                    async with self.session.post(url, data=params, headers=headers) as reply:
                        self.callback_log.append((record["sid"], status, attempt, reply.status))
                        if reply.status < 500:
                            record["status"] = status
                            if reply.status >= 400:
                                self.callbacks_failed.append(f"{reply.status} {record['sid']}")
                            break
                except (aiohttp.ClientError, TimeoutError) as exc:
                    self.callback_log.append((record["sid"], status, attempt, repr(exc)))
                await asyncio.sleep(min(0.5 * (attempt + 1), 3))
            else:
                self.callbacks_failed.append(f"gave up {record['sid']} {status}")

    def messages(self) -> list[dict[str, Any]]:
        return list(self.taken)


def offset_clock(path: Path) -> Callable[[], datetime]:
    """The deployment's drill clock (pingan/clock.py): real time plus the file's seconds."""

    def now() -> datetime:
        try:
            offset = float(path.read_text().strip() or 0)
        except (OSError, ValueError):
            offset = 0.0
        return datetime.now(UTC) + timedelta(seconds=offset)

    return now

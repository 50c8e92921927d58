"""A seeded hand-fuzz of every route in the aiohttp router, on the real `pingan run`:
wrong methods, bad and hostile bodies, huge and non-ASCII ids, control characters,
deep JSON, unknown charsets, as an anonymous caller, with the API token and with a
logged-in dispatcher's session. Nothing may answer 5xx, and the server must log no
traceback. The route list is read from the router, so a new route is fuzzed too."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from pingan.http.app import build_http_app
from pingan.store.schema import local_messages
from tests.conftest import ROSTER
from tests.e2e.harness import API_TOKEN, OPEN311_KEY, Stack, wait_for
from tests.e2e.test_console_browser import PASSWORDS, make_people

pytestmark = pytest.mark.e2e
SEED = 20261201
CASES_PER_ROUTE = 40
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def router_routes() -> list[tuple[str, str]]:
    app = build_http_app(None)  # type: ignore[arg-type]  # routes only
    return sorted(
        {
            (r.method, r.resource.canonical)
            for r in app.router.routes()
            if r.method != "HEAD" and r.resource is not None
        }
    )


ROUTES = router_routes()

HOSTILE_IDS = [
    "1",
    "0",
    "2",
    "99999999999999999999",
    "9" * 300,
    "%C2%B9",
    "%D9%A3",
    "%EF%BC%91",
    "-1",
    "1.5",
    "1e3",
    "%01",
    "%00",
    "%E2%80%AE",
    "a%22%3E%3Cimg%20src%3Dx%3E",
    "..%2F..%2Fetc%2Fpasswd",
    "tree-near",
    "yuanhui",
    "fallen_tree",
    "app.js",
]
QUERY_KEYS = [
    "service_request_id",
    "start_date",
    "end_date",
    "status",
    "service_code",
    "from",
    "to",
    "group",
    "districts",
    "format",
    "next",
    "jurisdiction_id",
]
QUERY_VALUES = [
    "1",
    "99999999999999999999",
    "¹",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "2026-12-01T00:00:00",
    "2026-13-45T99:00:00Z",
    "open,closed,weird",
    "\x01\x02",
    "x" * 5000,
    "yuanhui,nowhere",
    "json",
    "//evil.example/",
    "1,2,¹,3",
    "",
]
JSON_VALUES: list[Any] = [
    None,
    True,
    0,
    -1,
    10**30,
    1.5e308,
    "",
    "x",
    "\x01\x1b[31m",
    "Infinity",
    "NaN",
    [],
    [[1]],
    {},
    {"a": {"b": []}},
    "9" * 25,
    "¹",
    "0001-01-01T00:00:00+00:00",
]
JSON_KEYS = [
    "text",
    "lat",
    "long",
    "phone",
    "address",
    "event",
    "level",
    "districts",
    "template",
    "channels",
    "expires",
    "msg_type",
    "reason",
    "merge",
    "reports",
    "from",
    "to",
    "on_shift",
    "service_code",
    "id",
    "references",
    "api_key",
    "description",
    "attribute",
]


@dataclass
class Tally:
    sent: int = 0
    by_status: dict[int, int] = field(default_factory=dict)
    server_errors: list[str] = field(default_factory=list)

    def record(self, what: str, reply: httpx.Response) -> None:
        self.sent += 1
        self.by_status[reply.status_code] = self.by_status.get(reply.status_code, 0) + 1
        if reply.status_code >= 500:
            self.server_errors.append(f"{what} -> {reply.status_code} {reply.text[:200]}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    data = tmp_path_factory.mktemp("fuzz") / "data"
    make_people(data)
    running = Stack(data, {"PINGAN_ROSTER_FILE": str(ROSTER), "PINGAN_APPROVAL_THRESHOLD": "2"})
    yield running
    running.stop()


def _live_token(stack: Stack) -> str:
    assert stack.report(lat=33.5712, long=114.0153, description="人民路大树倒了").status_code == 200

    def link() -> str | None:
        with stack.store.read() as conn:
            for body in conn.execute(select(local_messages.c.body)).scalars():
                found = re.search(r"/c/(\S+)", body)
                if found:
                    return found.group(1)
        return None

    return wait_for(link, what="a crew link")


def _fill(path: str, rng: random.Random, token: str) -> str:
    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "fmt":
            return rng.choice(["json", "xml", "html", "%01", "JSON"])
        if name == "token":
            return rng.choice(
                [
                    token,
                    token + "==",
                    token + "==%22%3E%3Cimg%20src%3Dx%3E",
                    token[:-2],
                    token.replace(".", "%2E%2E"),
                    "a.b",
                    "x" * 500,
                ]
            )
        if name == "action":
            return rng.choice(["ack", "decline", "done", "en_route", "on_scene", "nope", "%01"])
        if name == "name":
            return rng.choice(["app.js", "style.css", "..%2Fpingan.db", "x"])
        return rng.choice(HOSTILE_IDS)

    return re.sub(r"\{([^}]+)\}", one, path)


def _body(rng: random.Random) -> tuple[bytes, dict[str, str]]:
    kind = rng.randrange(12)
    json_type = {"Content-Type": "application/json"}
    if kind == 0:
        return b"", {}
    if kind == 1:
        return b"[" * 50_000, json_type
    if kind == 2:
        return b'{"a":' * 3000 + b"1" + b"}" * 3000, json_type
    if kind == 3:
        obj = {rng.choice(JSON_KEYS): rng.choice(JSON_VALUES) for _ in range(rng.randrange(1, 6))}
        return json.dumps(obj).encode(), json_type
    if kind == 4:
        return rng.randbytes(rng.randrange(1, 300)), json_type
    if kind == 5:
        return b"x", {"Content-Type": "multipart/form-data"}
    if kind == 6:
        return b"a=b", {"Content-Type": "application/x-www-form-urlencoded; charset=nope"}
    if kind == 7:
        return b'{"text": "x"}', {"Content-Type": "application/json; charset=nope"}
    if kind == 8:
        return b"x" * 70_000, json_type  # past the 64 KB limit
    if kind == 9:
        form = {
            "api_key": OPEN311_KEY,
            "service_code": rng.choice(["fallen_tree", "manhole", "\x01"]),
            "lat": rng.choice(["33.5712", "Infinity", "95", "NaN", ""]),
            "long": rng.choice(["114.0153", "500", "-Infinity", ""]),
            "description": rng.choice(["树倒了\x01", "x" * 5000, ""]),
            "From": "+8613900000009",
            "Body": "1\x00",
            "username": "alice\x00",
            "password": "x",
        }
        return httpx.QueryParams(form).__str__().encode(), {
            "Content-Type": "application/x-www-form-urlencoded"
        }
    if kind == 10:
        return b"\xff\xfe\x00{", {"Content-Type": "application/x-www-form-urlencoded"}
    return json.dumps(rng.choice(JSON_VALUES)).encode(), json_type


def _query(rng: random.Random) -> dict[str, str]:
    return {rng.choice(QUERY_KEYS): rng.choice(QUERY_VALUES) for _ in range(rng.randrange(0, 4))}


def _login(stack: Stack) -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=stack.base_url, timeout=10)
    reply = client.post("/login", data={"username": "alice", "password": PASSWORDS["alice"]})
    assert reply.status_code == 303
    csrf = re.search(  # type: ignore[union-attr]
        r'name="csrf-token" content="([^"]+)"', client.get("/console/").text
    ).group(1)
    return client, csrf


def test_no_route_answers_5xx_to_hostile_requests(stack: Stack) -> None:
    rng = random.Random(SEED)
    token = _live_token(stack)
    tally = Tally()
    anonymous = httpx.Client(base_url=stack.base_url, timeout=15)
    alice, csrf = _login(stack)
    callers = [
        ("anonymous", anonymous, {}),
        ("api-token", anonymous, {"Authorization": f"Bearer {API_TOKEN}"}),
        ("alice", alice, {"X-CSRF-Token": csrf}),
    ]
    for method, path in ROUTES:
        for _ in range(CASES_PER_ROUTE):
            who, client, auth = rng.choice(callers)
            verb = method if rng.random() < 0.75 else rng.choice(METHODS)
            url = _fill(path, rng, token)
            body, headers = _body(rng) if verb != "GET" else (b"", {})
            what = f"{who} {verb} {url} body={body[:40]!r}"
            if path == "/api/stream" and verb == "GET":
                with client.stream("GET", url, headers=auth) as reply:
                    tally.record(what, reply)
                continue
            reply = client.request(
                verb,
                url,
                params=_query(rng),
                content=body,
                headers={**auth, **headers},
                follow_redirects=False,
            )
            tally.record(what, reply)
    print(f"\nfuzz: {tally.sent} requests over {len(ROUTES)} routes; by status {tally.by_status}")
    assert tally.sent >= len(ROUTES) * CASES_PER_ROUTE
    assert tally.server_errors == []
    assert "Traceback" not in stack.output()
    assert "level=error logger=pingan.http" not in stack.output()


def test_the_fuzz_covers_every_route_and_every_405_names_allow(stack: Stack) -> None:
    assert len(ROUTES) >= 51
    for method, path in ROUTES:
        wrong = "DELETE" if method != "DELETE" else "PUT"
        url = re.sub(r"\{[^}]+\}", "1", path).replace(".{fmt}", ".json")
        reply = httpx.request(wrong, stack.base_url + url, timeout=10)
        if reply.status_code == 405:
            assert method in reply.headers.get("allow", ""), (wrong, url, reply.headers)

"""Access, route by route: every /api/ and /console route refuses anonymous access
(login, Open311 intake, crew links, webhooks, CAP, published warnings' pages, and the
operator's health, readiness and metrics probes are public); a viewer cannot change
anything nor read who was sent what, a dispatcher cannot do a supervisor's part;
changes need the session's CSRF token; logins are throttled; idle sessions end;
passwords are hashed."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from pingan.http.app import build_http_app
from pingan.store.schema import users
from tests.conftest import ROSTER
from tests.e2e.harness import Stack
from tests.e2e.test_console_browser import PASSWORDS, make_people

pytestmark = pytest.mark.e2e
PUBLIC = (
    "/login",
    "/healthz",
    "/readyz",
    "/metrics",
    "/open311/",
    "/c/",
    "/webhooks/",
    "/cap/",
    "/warnings/",
)


def _routes() -> list[tuple[str, str]]:
    app = build_http_app(None)  # type: ignore[arg-type]  # routes only
    found = set()
    for route in app.router.routes():
        path = route.resource.canonical if route.resource else ""
        if route.method == "HEAD" or path.startswith(PUBLIC):
            continue
        found.add((route.method, re.sub(r"\{[^}]+\}", "1", path)))
    return sorted(found)


ROUTES = _routes()
CHANGES = [(m, p) for m, p in ROUTES if m in ("POST", "PUT", "PATCH", "DELETE")]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    data = tmp_path_factory.mktemp("auth") / "data"
    make_people(data)
    (data.parent / "clock").write_text("0")
    running = Stack(
        data,
        {"PINGAN_ROSTER_FILE": str(ROSTER), "PINGAN_CLOCK_OFFSET_FILE": str(data.parent / "clock")},
    )
    yield running
    running.stop()


def session(stack: Stack, user: str) -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=stack.base_url, timeout=10)
    reply = client.post("/login", data={"username": user, "password": PASSWORDS[user]})
    assert reply.status_code == 303, reply.text
    assert "HttpOnly" in reply.headers["set-cookie"]
    assert "SameSite=Strict" in reply.headers["set-cookie"]
    page = client.get("/console/")
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    return client, csrf


def test_the_route_list_covers_the_console_and_api() -> None:
    assert ("GET", "/console/") in ROUTES and ("GET", "/api/board") in ROUTES
    for needed in (
        "/api/incidents/1/dispatch",
        "/api/citizen-warnings/1/approve",
        "/api/incidents/1/resolve",
        "/api/assignments/1/reassign",
        "/api/reports",
    ):
        assert ("POST", needed) in CHANGES


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
def test_anonymous_is_refused(stack: Stack, method: str, path: str) -> None:
    reply = httpx.request(method, stack.base_url + path, timeout=10, follow_redirects=False)
    if path.startswith("/console"):
        assert reply.status_code == 302 and reply.headers["location"].startswith("/login")
    else:
        assert reply.status_code == 401


@pytest.mark.parametrize(("method", "path"), CHANGES, ids=[f"{m} {p}" for m, p in CHANGES])
def test_a_viewer_cannot_change_anything(stack: Stack, method: str, path: str) -> None:
    client, csrf = session(stack, "vera")
    reply = client.request(method, path, headers={"X-CSRF-Token": csrf}, json={})
    assert reply.status_code == 403 and "role viewer may not do this" in reply.json()["error"]


def test_roles_csrf_and_reading(stack: Stack) -> None:
    vera, _ = session(stack, "vera")
    assert vera.get("/api/board").status_code == 200  # viewers see everything
    history = vera.get("/api/messages", params={"phone": "+8613811112222"})
    assert history.status_code == 403  # but what was sent to whom is not theirs to read
    assert history.json()["error"].endswith("(needs dispatcher)")
    alice, csrf = session(stack, "alice")
    assert (
        alice.post("/api/incidents/1/release", headers={"X-CSRF-Token": csrf})
        .json()["error"]
        .endswith("(needs supervisor)")
    )
    no_token = alice.post("/api/incidents/1/dispatch")
    assert no_token.status_code == 403 and "X-CSRF-Token" in no_token.json()["error"]
    assert (
        alice.post("/api/incidents/1/dispatch", headers={"X-CSRF-Token": csrf}).status_code == 404
    )  # allowed; there is no incident 1
    assert alice.post("/api/logout", headers={"X-CSRF-Token": csrf}).status_code == 303
    assert alice.get("/api/board").status_code == 401  # the session is gone


def test_login_throttled_and_sessions_expire_when_idle(stack: Stack, tmp_path: Path) -> None:
    for _ in range(5):
        assert (
            httpx.post(
                f"{stack.base_url}/login", data={"username": "bob", "password": "wrong"}
            ).status_code
            == 401
        )
    blocked = httpx.post(
        f"{stack.base_url}/login", data={"username": "bob", "password": PASSWORDS["bob"]}
    )
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0

    alice, _ = session(stack, "alice")
    assert alice.get("/api/board").status_code == 200
    clock = stack.data_dir.parent / "clock"
    clock.write_text(str(31 * 60))  # 31 idle minutes later
    try:
        assert alice.get("/api/board").status_code == 401
    finally:
        clock.write_text("0")


def test_callers_numbers_only_for_dispatchers(stack: Stack) -> None:
    reply = stack.report(lat=33.5712, long=114.0153, description="树倒了", phone="+8613811112222")
    request_id = reply.json()[0]["service_request_id"]
    from tests.e2e.harness import wait_for

    def incident_of(client: httpx.Client) -> dict | None:
        for summary in client.get("/api/board").json()["incidents"]:
            found = client.get(f"/api/incidents/{summary['id']}").json()
            if any(r["service_request_id"] == request_id for r in found["reports"]):
                return found
        return None

    alice, _ = session(stack, "alice")
    vera, _ = session(stack, "vera")
    seen = wait_for(lambda: incident_of(alice), what="incident with the report")
    phones = {r["contact"].get("phone") for r in seen["reports"]}
    assert "+8613811112222" in phones
    masked = {r["contact"].get("phone") for r in incident_of(vera)["reports"]}  # type: ignore[index]
    assert "+86138****2222" in masked and "+8613811112222" not in masked
    machine = stack.incident(seen["id"])  # API token: a machine
    assert "+8613811112222" not in {r["contact"].get("phone") for r in machine["reports"]}


def test_passwords_are_stored_as_scrypt_hashes(stack: Stack) -> None:
    with stack.store.read() as conn:
        stored = dict(conn.execute(select(users.c.username, users.c.password)).all())
    assert all(h.startswith("scrypt$16384$8$1$") for h in stored.values())
    assert not any(PASSWORDS[u] in h for u, h in stored.items())


def test_shift_handover_page_and_export(stack: Stack) -> None:
    """The handover names open incidents the way the board does, in one language
    (Chinese, or English with ?lang=en), with the crews still to acknowledge and the
    drafts still to approve; `?format=json` exports the same. Viewers may read it."""
    from tests.e2e.harness import wait_for

    assert stack.report(lat=33.5880, long=114.0070, description="大树倒在路上").status_code == 200
    alice, csrf = session(stack, "alice")
    draft = alice.post(
        "/api/citizen-warnings",
        json={
            "event": "gale",
            "level": "yellow",
            "districts": ["yancheng"],
            "template": "gale-yellow",
            "channels": ["sms"],
        },
        headers={"X-CSRF-Token": csrf},
    )
    assert draft.status_code in (200, 201), draft.text

    def exported() -> dict | None:
        data = alice.get("/console/handover?format=json").json()
        pending = [i for i in data["open"] if i["assignments"]]
        return data if data["pending_acks"] and pending else None

    data = wait_for(exported, what="an open incident with a crew to acknowledge")
    assert data["pending_approvals"] >= 1
    tree = next(i for i in data["open"] if i["category"] == "fallen_tree")
    assert tree["labels"]["category"] == {"zh": "倒伏树木", "en": "Fallen tree"}
    vera, _ = session(stack, "vera")
    page = vera.get("/console/handover")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for words in ("交接班", "未结事件", "倒伏树木", "待确认", "待审批预警", "大风黄色"):
        assert words in page.text, words
    assert "fallen_tree" not in page.text
    shown = re.sub(r'<span translate="no">[^<]*</span>|<[^>]+>', " ", page.text)
    assert re.findall(r"[A-Za-z]{2,}", shown) == []  # one language: Chinese, by default
    english = vera.get("/console/handover?lang=en").text
    for words in ("Shift handover", "Open incidents", "Fallen tree", "Gale yellow"):
        assert words in english, words

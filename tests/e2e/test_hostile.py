"""Hostile input and access (issue 12), on the real `pingan run`: a crafted crew link
cannot run script (in Chromium), every page carries a CSP without inline script and
refuses framing, the session cookie is Secure behind an https public URL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from xml.etree import ElementTree

import httpx
import pytest
from playwright.sync_api import Browser
from sqlalchemy import select, update

from pingan.store.schema import audit, citizen_warnings, local_messages, reports
from tests.conftest import ROSTER
from tests.e2e.harness import OPEN311_KEY, Stack, wait_for
from tests.e2e.test_console_browser import PASSWORDS, make_people, pingan_cli

pytestmark = pytest.mark.e2e
NEAR_PHONE = "+8610000000101"
PUBLIC_URL = "https://pingan.example.cn"
# No dot in the payload: the old decoder split the token on dots, and took this one.
XSS = "==\"><img src=x onerror=\"document['title']='pwned'\">"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    data = tmp_path_factory.mktemp("hostile") / "data"
    make_people(data)
    pingan_cli(data, "tokens", "add", "carol")  # a named credential made by the command
    running = Stack(
        data,
        {
            "PINGAN_ROSTER_FILE": str(ROSTER),
            "PINGAN_PUBLIC_URL": PUBLIC_URL,
            "PINGAN_APPROVAL_THRESHOLD": "2",
            "PINGAN_API_TOKENS": "e2e-api-token,alice:tok-alice,bob=tok-bob",
        },
    )
    yield running
    running.stop()


@pytest.fixture(scope="module")
def crew_token(stack: Stack) -> str:
    """A live crew link's token, from the SMS the nearest tree crew was sent."""
    assert stack.report(lat=33.5712, long=114.0153, description="人民路大树倒了").status_code == 200

    def link() -> str | None:
        with stack.store.read() as conn:
            for body in conn.execute(
                select(local_messages.c.body).where(local_messages.c.recipient == NEAR_PHONE)
            ).scalars():
                found = re.search(r"/c/(\S+)", body)
                if found:
                    return found.group(1)
        return None

    return wait_for(link, what="the crew's SMS with its link")


def session(stack: Stack, user: str) -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=stack.base_url, timeout=10)
    reply = client.post("/login", data={"username": user, "password": PASSWORDS[user]})
    assert reply.status_code == 303, reply.text
    # The cookie is Secure (the public URL is https), so httpx will not send it back
    # over plain http: carry it by hand, as the TLS-terminating proxy would.
    cookie = reply.headers["set-cookie"]
    client.cookies.set("pingan_session", cookie.split(";")[0].split("=", 1)[1])
    page = client.get("/console/")
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    return client, csrf


# ---- crew links -----------------------------------------------------------------


def test_a_crafted_crew_link_is_refused_and_escapes_nothing(stack: Stack, crew_token: str) -> None:
    assert stack.http.get(f"/c/{crew_token}").status_code == 200
    crafted = stack.http.get(f"/c/{crew_token}{XSS}")
    assert crafted.status_code == 403
    assert "<img" not in crafted.text and "onerror" not in crafted.text
    assert stack.http.post(f"/c/{crew_token}==/ack").status_code == 403


def test_a_crafted_crew_link_cannot_run_script_in_chromium(
    stack: Stack,
    crew_token: str,
    browser: Browser,
) -> None:
    page = browser.new_context(viewport={"width": 390, "height": 844}).new_page()
    page.goto(f"{stack.base_url}/c/{crew_token}", wait_until="load")
    genuine = page.title()
    assert genuine.startswith("任务")
    page.goto(
        f"{stack.base_url}/c/{crew_token}=="
        "%22%3E%3Cimg%20src%3Dx%20onerror%3D%22document%5B%27title%27%5D%3D%27pwned%27%22%3E",
        wait_until="load",  # after every image has loaded or failed, so onerror had its turn
    )
    assert page.title() != "pwned"
    assert page.evaluate("document.querySelectorAll('img').length") == 0
    page.context.close()


# ---- headers --------------------------------------------------------------------


def _assert_protected_page(reply: httpx.Response) -> None:
    csp = reply.headers.get("content-security-policy", "")
    script_src = next(
        (d for d in csp.split(";") if d.strip().startswith("script-src")),
        next((d for d in csp.split(";") if d.strip().startswith("default-src")), ""),
    )
    assert script_src, f"no script policy on {reply.url}: {csp!r}"
    assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src
    assert "frame-ancestors 'none'" in csp
    assert reply.headers.get("x-frame-options") == "DENY"
    assert reply.headers.get("referrer-policy") == "no-referrer"


def test_every_html_page_carries_a_csp_without_inline_script(stack: Stack, crew_token: str) -> None:
    alice, _ = session(stack, "alice")
    pages = [
        stack.http.get("/login"),
        stack.http.get(f"/c/{crew_token}"),
        stack.http.get("/c/not-a-link"),
        alice.get("/console/"),
        alice.get("/console/handover"),
    ]
    for reply in pages:
        assert reply.headers["content-type"].startswith("text/html"), reply.url
        _assert_protected_page(reply)
    for html_page in (pages[0], pages[3], pages[4]):  # no inline script or handlers
        assert not re.search(r"<script(?![^>]*\bsrc=)", html_page.text)
        assert not re.search(r"\son[a-z]+\s*=", html_page.text)
    _assert_protected_page(stack.http.get("/healthz"))  # JSON answers carry it too


def test_the_session_cookie_is_secure_behind_an_https_public_url(stack: Stack) -> None:
    reply = httpx.post(
        f"{stack.base_url}/login",
        data={"username": "alice", "password": PASSWORDS["alice"]},
        timeout=10,
    )
    assert reply.status_code == 303
    cookie = reply.headers["set-cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie


# ---- the two-person rule --------------------------------------------------------

SHARED = {"Authorization": "Bearer e2e-api-token"}
ALICE = {"Authorization": "Bearer tok-alice"}  # "alice:tok-alice"
BOB = {"Authorization": "Bearer tok-bob"}  # "bob=tok-bob", the older form


def _draft(stack: Stack, headers: dict[str, str]) -> dict[str, object]:
    reply = stack.http.post(
        "/api/citizen-warnings",
        headers=headers,
        json={
            "event": "blizzard",
            "level": "orange",
            "districts": ["yuanhui"],
            "template": "blizzard-orange",
            "channels": ["sms"],
        },
    )
    assert reply.status_code == 201, reply.text
    draft = reply.json()
    assert draft["needs_second_person"] is True  # 3 recipients, threshold 2
    return draft


def _approvals(stack: Stack, warning_id: object) -> list[str]:
    with stack.store.read() as conn:
        return list(
            conn.execute(
                select(audit.c.actor).where(
                    audit.c.action == "citizen_warning.approved",
                    audit.c.entity_id == str(warning_id),
                )
            ).scalars()
        )


def test_the_shared_api_token_cannot_approve_a_warning(stack: Stack) -> None:
    draft = _draft(stack, ALICE)
    shared = stack.http.post(f"/api/citizen-warnings/{draft['id']}/approve", headers=SHARED)
    assert shared.status_code == 403 and "names no person" in shared.json()["error"]
    own = stack.http.post(f"/api/citizen-warnings/{draft['id']}/approve", headers=ALICE)
    assert own.status_code == 403 and "the drafter cannot approve" in own.json()["error"]
    by_shared = _draft(stack, SHARED)  # the shared token may draft; it still cannot approve
    again = stack.http.post(f"/api/citizen-warnings/{by_shared['id']}/approve", headers=SHARED)
    assert again.status_code == 403
    assert _approvals(stack, draft["id"]) == [] and _approvals(stack, by_shared["id"]) == []


def test_two_named_people_can_approve_and_the_audit_names_the_approver(stack: Stack) -> None:
    draft = _draft(stack, ALICE)
    approved = stack.http.post(f"/api/citizen-warnings/{draft['id']}/approve", headers=BOB)
    assert approved.status_code == 200, approved.text
    assert (
        stack.http.get(f"/api/citizen-warnings/{draft['id']}", headers=BOB).json()["approved_by"]
        == "bob"
    )
    assert _approvals(stack, draft["id"]) == ["bob"]

    carol_token = next(
        line.split(":", 1)[1]
        for line in (stack.data_dir / "api_tokens").read_text().splitlines()
        if line.startswith("carol:")
    )
    by_carol = _draft(stack, {"Authorization": f"Bearer {carol_token}"})
    alice, csrf = session(stack, "alice")  # a logged-in dispatcher is a named person too
    reply = alice.post(
        f"/api/citizen-warnings/{by_carol['id']}/approve", headers={"X-CSRF-Token": csrf}
    )
    assert reply.status_code == 200, reply.text
    assert _approvals(stack, by_carol["id"]) == ["alice"]


# ---- no 500s: the eight causes found, one test each -------------------------------

JSON_POSTS = [
    "/api/reports",
    "/api/warnings",
    "/api/citizen-warnings",
    "/api/citizen-warnings/1/correct",
    "/api/incidents/1/resolve",
    "/api/incidents/1/merge",
    "/api/incidents/1/split",
    "/api/incidents/1/reopen",
    "/api/crews/tree-near/overrides",
    "/api/review/1",
]


def _names(reply: httpx.Response, field: str, status: int = 400) -> None:
    assert reply.status_code == status, (reply.status_code, reply.text)
    text = reply.text
    assert field in text, f"{field!r} not named in {text!r}"
    assert "Traceback" not in text


def test_unicode_digits_in_ids_are_not_ids(stack: Stack) -> None:
    reply = stack.http.get("/open311/v2/requests/%C2%B9.json")
    _names(reply, "service_request_id", 404)
    assert reply.json()[0]["code"] == 404  # Open311's own error shape
    _names(stack.http.get("/api/incidents/%C2%B9", headers=SHARED), "id", 404)
    _names(stack.http.get("/cap/alerts/%D9%A3.xml"), "warning", 404)
    _names(stack.http.post("/api/assignments/%C2%B2/reassign", headers=SHARED), "assignment", 404)


def test_ids_past_64_bits_are_refused(stack: Stack) -> None:
    huge = "99999999999999999999"
    _names(
        stack.http.get("/open311/v2/requests.json", params={"service_request_id": huge}),
        "service_request_id",
    )
    _names(stack.http.get(f"/open311/v2/requests/{huge}.xml"), "service_request_id", 404)
    _names(stack.http.get(f"/api/incidents/{huge}", headers=SHARED), "id", 404)
    _names(
        stack.http.post("/api/incidents/1/merge", headers=SHARED, json={"merge": int(huge)}),
        "merge",
    )


def test_dates_that_would_overflow_are_refused(stack: Stack) -> None:
    _names(
        stack.http.get("/open311/v2/requests.json", params={"end_date": "0001-01-01T00:00:00Z"}),
        "end_date",
    )
    _names(
        stack.http.get("/open311/v2/requests.xml", params={"start_date": "9999-12-31T23:59:59Z"}),
        "start_date",
    )
    _names(
        stack.http.get("/api/kpis", params={"to": "0001-01-01T00:00:00+00:00"}, headers=SHARED),
        "to",
    )
    _names(
        stack.http.post(
            "/api/crews/tree-near/overrides",
            headers=SHARED,
            json={
                "from": "0001-01-01T00:00:00+00:00",
                "to": "0001-01-02T00:00:00+00:00",
                "on_shift": True,
            },
        ),
        "from",
    )


def test_a_malformed_multipart_login_is_a_400(stack: Stack) -> None:
    for content_type in ("multipart/form-data", "multipart/form-data; boundary=zz"):
        reply = stack.http.post("/login", content=b"x", headers={"Content-Type": content_type})
        _names(reply, "body")


def test_an_unknown_charset_is_a_400_naming_content_type(stack: Stack) -> None:
    form = "application/x-www-form-urlencoded; charset=no-such-charset"
    for path, headers in (
        ("/login", {}),
        ("/open311/v2/requests.json", {}),
        ("/webhooks/twilio/sms", {}),
        ("/api/reports", SHARED),
    ):
        reply = stack.http.post(path, content=b"a=b", headers={**headers, "Content-Type": form})
        _names(reply, "Content-Type")
    reply = stack.http.post(
        "/api/reports",
        content=b'{"text": "x"}',
        headers={**SHARED, "Content-Type": "application/json; charset=no-such-charset"},
    )
    _names(reply, "Content-Type")


@pytest.mark.parametrize("path", JSON_POSTS)
def test_deeply_nested_json_is_a_400_on_every_json_post(stack: Stack, path: str) -> None:
    reply = stack.http.post(
        path, content=b"[" * 50_000, headers={**SHARED, "Content-Type": "application/json"}
    )
    _names(reply, "body")


def test_deeply_nested_json_is_a_400_on_open311(stack: Stack) -> None:
    reply = stack.http.post(
        "/open311/v2/requests.json",
        content=b'{"a": ' * 5_000,
        headers={"Content-Type": "application/json"},
    )
    _names(reply, "body")


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/warnings", {"id": "w1", "event": [], "level": "red", "districts": "all"}, "event"),
        (
            "/api/citizen-warnings",
            {"event": "blizzard", "level": "red", "districts": 1, "template": "blizzard-red"},
            "districts",
        ),
        (
            "/api/citizen-warnings",
            {
                "event": "blizzard",
                "level": "red",
                "districts": ["yuanhui"],
                "template": "blizzard-red",
                "channels": [[1]],
            },
            "channels",
        ),
        (
            "/api/citizen-warnings",
            {"event": {}, "level": "red", "districts": ["yuanhui"], "template": "x"},
            "event",
        ),
        ("/api/reports", {"text": ["x"]}, "text"),
        ("/api/reports", {"text": "树倒了", "lat": [], "long": 114.0}, "lat"),
        ("/api/incidents/1/split", {"reports": "1,2"}, "reports"),
        ("/api/incidents/1/resolve", {"reason": 5}, "reason"),
        ("/api/crews/tree-near/overrides", {"from": 1, "to": 2, "on_shift": "yes"}, "from"),
        ("/api/review/1", {"service_code": None}, "service_code"),
        ("/api/citizen-warnings/1/correct", {"msg_type": "Update", "text": {"a": 1}}, "text"),
    ],
)
def test_wrong_json_types_are_a_400_naming_the_field(
    stack: Stack, path: str, body: object, field: str
) -> None:
    _names(stack.http.post(path, json=body, headers=SHARED), field)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"text": "人民路大树倒了", "lat": "Infinity", "long": 114.0153}, "lat"),
        ({"text": "人民路大树倒了", "lat": 33.57, "long": "-Infinity"}, "long"),
        ({"text": "人民路大树倒了", "lat": "NaN", "long": 114.0153}, "lat"),
        ({"text": "人民路大树倒了", "lat": 95, "long": 500}, "lat"),
        ({"text": "人民路大树倒了", "lat": 33.57, "long": 500}, "long"),
        ({"text": "人民路大树倒了", "lat": 39.9042, "long": 116.4074}, "outside the city"),
    ],
)
def test_coordinates_off_the_world_or_the_city_are_a_400(
    stack: Stack, body: dict[str, object], field: str
) -> None:
    before = len(stack.incidents())
    _names(stack.http.post("/api/reports", json=body, headers=SHARED), field)
    raw = '{"text": "x", "lat": Infinity, "long": 114}'  # not JSON at all
    reply = stack.http.post(
        "/api/reports", content=raw, headers={**SHARED, "Content-Type": "application/json"}
    )
    _names(reply, "body")
    assert len(stack.incidents()) == before  # nothing opened, nobody dispatched


def test_open311_coordinates_are_bounded_too(stack: Stack) -> None:
    for lat, long in (("Infinity", "114"), ("95", "500"), ("NaN", "114.01")):
        reply = stack.report(lat=lat, long=long, description="树倒了")
        assert reply.status_code == 400 and "lat" in reply.text, reply.text


def test_method_not_allowed_says_which_are(stack: Stack) -> None:
    reply = stack.http.delete("/api/board", headers=SHARED)
    assert reply.status_code == 405
    assert "GET" in reply.headers["allow"]
    reply = stack.http.put("/open311/v2/requests.json")
    assert reply.status_code == 405 and "POST" in reply.headers["allow"]
    assert reply.json()[0]["code"] == 405


def test_a_client_hanging_up_mid_body_is_not_an_error(stack: Stack) -> None:
    import socket

    with socket.create_connection(("127.0.0.1", stack.port)) as sock:
        sock.sendall(
            b"POST /open311/v2/requests.json HTTP/1.1\r\nHost: x\r\n"
            b'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"api_key"'
        )
    wait_for(lambda: "client disconnected" in stack.output(), what="the disconnect noticed")
    assert "Traceback" not in stack.output()
    assert "level=error" not in stack.output()


# ---- control characters and public XML ---------------------------------------------


def _parses(reply: httpx.Response) -> ElementTree.Element:
    assert reply.status_code == 200, reply.text
    return ElementTree.fromstring(reply.content)  # raises if not well-formed


def test_control_characters_cannot_break_open311_xml(stack: Stack) -> None:
    sent = stack.report(lat=33.5712, long=114.0153, description="路灯\x01坏了\x1b[31m")
    assert sent.status_code == 200, sent.text
    report_id = sent.json()[0]["service_request_id"]
    [shown] = stack.http.get(f"/open311/v2/requests/{report_id}.json").json()
    assert shown["description"] == "路灯坏了[31m"  # cleaned on the way in
    with stack.store.transaction() as conn:  # as a row stored before the fix would be
        conn.execute(
            update(reports)
            .where(reports.c.id == int(report_id))
            .values(description="树倒了\x01\x08\x7f", address="人民路\x0c")
        )
    one = _parses(stack.http.get(f"/open311/v2/requests/{report_id}.xml"))
    assert one.findtext("request/description") == "树倒了"
    _parses(stack.http.get("/open311/v2/requests.xml"))


def test_control_characters_cannot_break_cap_alerts_or_the_atom_feed(stack: Stack) -> None:
    draft = _draft(stack, ALICE)
    approved = stack.http.post(f"/api/citizen-warnings/{draft['id']}/approve", headers=BOB)
    assert approved.status_code == 200, approved.text
    corrected = stack.http.post(
        f"/api/citizen-warnings/{draft['id']}/correct",
        headers=SHARED,
        json={"msg_type": "Update", "text": "暴雪预警更新\x01：请注意\x1f出行"},
    )
    assert corrected.status_code == 201, corrected.text
    correction = corrected.json()["id"]
    with stack.store.transaction() as conn:  # stored before input was cleaned
        conn.execute(
            update(citizen_warnings)
            .where(citizen_warnings.c.id == draft["id"])
            .values(text_zh="暴雪\x02橙色预警", text_en="Blizzard\x03 orange")
        )
    cap = "{urn:oasis:names:tc:emergency:cap:1.2}"
    fixed = _parses(stack.http.get(f"/cap/alerts/{correction}.xml"))
    assert fixed.findtext(f"{cap}info/{cap}description") == "暴雪预警更新：请注意出行"
    original = _parses(stack.http.get(f"/cap/alerts/{draft['id']}.xml"))
    assert original.findtext(f"{cap}info/{cap}description") == "暴雪橙色预警"
    feed = _parses(stack.http.get("/cap/feed.atom"))
    titles = [t.text for t in feed.iter("{http://www.w3.org/2005/Atom}title")]
    assert "暴雪橙色预警" in titles


# ---- personal data in public ---------------------------------------------------------

PHONE, ID_NUMBER, HOUSE = "13812345678", "41110219800101123X", "12号院3号楼2单元501室"
PERSONAL = f"人民路{HOUSE}门口大树倒了，压住车了。我电话{PHONE}，身份证{ID_NUMBER}"


def _public_texts(stack: Stack, report_id: str, client: httpx.Client) -> list[str]:
    return [
        client.get(f"/open311/v2/requests/{report_id}.json").text,
        client.get(f"/open311/v2/requests/{report_id}.xml").text,
        client.get("/open311/v2/requests.json").text,
        client.get("/open311/v2/requests.xml").text,
    ]


def test_anonymous_open311_readers_see_no_phone_id_number_or_house_number(
    stack: Stack,
) -> None:
    by_operator = stack.http.post(
        "/api/reports",
        headers=SHARED,
        json={"text": PERSONAL, "lat": 33.5712, "long": 114.0153, "address": f"人民路{HOUSE}"},
    )
    assert by_operator.status_code == 201, by_operator.text
    by_open311 = stack.report(
        lat=33.5712, long=114.0153, description=PERSONAL, address_string=f"人民路{HOUSE}"
    )
    assert by_open311.status_code == 200, by_open311.text
    anonymous = httpx.Client(base_url=stack.base_url, timeout=10)
    for report_id in (
        by_operator.json()["service_request_id"],
        by_open311.json()[0]["service_request_id"],
    ):
        for text in _public_texts(stack, report_id, anonymous):
            for secret in (PHONE, ID_NUMBER, "12号院", "501室", "3号楼"):
                assert secret not in text
        [shown] = anonymous.get(f"/open311/v2/requests/{report_id}.json").json()
        assert shown["description"].startswith("人民路[门牌已隐去]门口大树倒了")
        assert "[电话已隐去]" in shown["description"]
        assert "[证件号已隐去]" in shown["description"]

        alice, _ = session(stack, "alice")  # a logged-in dispatcher reads it all
        [full] = alice.get(f"/open311/v2/requests/{report_id}.json").json()
        assert full["description"] == PERSONAL
        assert "人民路" + HOUSE in alice.get(f"/open311/v2/requests/{report_id}.xml").text
        [api] = stack.http.get(f"/open311/v2/requests/{report_id}.json", headers=SHARED).json()
        assert api["description"] == PERSONAL
        vera, _ = session(stack, "vera")  # a viewer is not a dispatcher
        [viewer] = vera.get(f"/open311/v2/requests/{report_id}.json").json()
        assert PHONE not in viewer["description"]


# ---- files and logs ------------------------------------------------------------------


def test_the_data_folder_is_private_and_logs_hold_no_crew_link(
    stack: Stack, crew_token: str
) -> None:
    data = stack.data_dir
    assert data.stat().st_mode & 0o777 == 0o700
    files = [p for p in data.rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert {"pingan.db", "worker.log", "link_secret", "api_tokens"} <= names
    loose = {str(p.relative_to(data)): oct(p.stat().st_mode & 0o777) for p in files}
    assert {k: v for k, v in loose.items() if v != "0o600"} == {}
    for directory in (p for p in data.rglob("*") if p.is_dir()):
        assert directory.stat().st_mode & 0o777 == 0o700, directory
    wait_for(lambda: "message to=" in (data / "worker.log").read_text(), what="sends logged")
    for log_text in ((data / "worker.log").read_text(), stack.output()):
        assert crew_token not in log_text
        assert crew_token.split(".")[1] not in log_text  # not even its signature
    assert "/c/[link]" in (data / "worker.log").read_text()


# ---- limits that were easy to dodge or to turn against people ------------------------


def _from(stack: Stack, address: str) -> httpx.Client:
    """A client whose requests come from another loopback address (another caller)."""
    return httpx.Client(
        base_url=stack.base_url,
        timeout=10,
        transport=httpx.HTTPTransport(local_address=address),
    )


def test_one_caller_is_one_caller_however_the_number_is_written(stack: Stack) -> None:
    spellings = [
        "13900000077",
        "8613900000077",
        "+86 139 0000 0077",
        "139-0000-0077",
        "139\u200b0000\u200b0077",
        "+8613900000077",
        "0086 13900000077",
    ]
    replies = [
        stack.report(lat=33.5712, long=114.0153, description=f"树倒了{n}", phone=p)
        for n, p in enumerate(spellings)
    ]
    assert [r.status_code for r in replies[:6]] == [200] * 6, [r.text for r in replies]
    assert replies[6].status_code == 429  # the seventh from the same phone in a minute
    ids = [int(r.json()[0]["service_request_id"]) for r in replies[:6]]
    with stack.store.read() as conn:
        stored = {
            row.contact["phone"]
            for row in conn.execute(select(reports.c.contact).where(reports.c.id.in_(ids)))
        }
    assert stored == {"+8613900000077"}
    bad = stack.report(lat=33.5712, long=114.0153, description="树倒了", phone="call me")
    _names(bad, "phone")


def test_the_open311_bucket_is_per_key_and_client_address(stack: Stack) -> None:
    flooder = _from(stack, "127.0.0.2")
    form = {"api_key": OPEN311_KEY, "service_code": "no-such-service"}
    statuses = []
    while 429 not in statuses and len(statuses) < 1000:  # the bucket refills as we go
        statuses.append(flooder.post("/open311/v2/requests.json", data=form).status_code)
    assert statuses[-1] == 429 and set(statuses[:-1]) == {400} and len(statuses) > 300
    # Everyone else on the same key is still served.
    assert stack.http.post("/open311/v2/requests.json", data=form).status_code == 400


def test_failed_logins_from_elsewhere_do_not_lock_a_colleague_out(stack: Stack) -> None:
    outsider = _from(stack, "127.0.0.3")
    for _ in range(5):
        assert outsider.post("/login", data={"username": "bob", "password": "x"}).status_code == 401
    assert outsider.post("/login", data={"username": "bob", "password": "x"}).status_code == 429
    at_desk = httpx.post(
        f"{stack.base_url}/login", data={"username": "bob", "password": PASSWORDS["bob"]}
    )
    assert at_desk.status_code == 303  # bob, from his own desk, logs in


def _signed_sms(stack: Stack, params: dict[str, str]) -> httpx.Response:
    from twilio.request_validator import RequestValidator

    token = (stack.data_dir / "twilio_auth_token").read_text().strip()
    signature = RequestValidator(token).compute_signature(
        f"{PUBLIC_URL}/webhooks/twilio/sms", params
    )
    return stack.http.post(
        "/webhooks/twilio/sms", data=params, headers={"X-Twilio-Signature": signature}
    )


def test_a_replayed_signed_webhook_changes_nothing(stack: Stack) -> None:
    params = {
        "MessageSid": "SM" + "7" * 32,
        "From": "+8613900000066",
        "To": "+8610690000",
        "Body": "人民路大树倒了挡住路",
    }
    first = _signed_sms(stack, params)
    assert first.status_code == 200 and "<Message>" in first.text, first.text
    with stack.store.read() as conn:
        count = len(conn.execute(select(reports.c.id)).all())
    replay = _signed_sms(stack, params)
    assert replay.status_code == 200 and "<Message>" not in replay.text
    with stack.store.read() as conn:
        assert len(conn.execute(select(reports.c.id)).all()) == count


def test_a_flood_of_bad_links_writes_a_bounded_audit(stack: Stack) -> None:
    def refusals() -> int:
        with stack.store.read() as conn:
            return len(
                conn.execute(select(audit.c.id).where(audit.c.action == "crew_link.refused")).all()
            )

    before = refusals()
    for n in range(200):
        assert stack.http.get(f"/c/bad.link{n}").status_code == 403
    assert refusals() - before <= 30


def test_a_stalled_body_does_not_hold_the_connection(stack: Stack) -> None:
    import socket

    with socket.create_connection(("127.0.0.1", stack.port), timeout=60) as sock:
        sock.sendall(
            b"POST /api/reports HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer e2e-api-token\r\n"
            b'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"te'
        )
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"body" in answer

"""Who may do what. People log in (scrypt-hashed passwords, a session cookie that is
HttpOnly and SameSite=Strict, a CSRF token on every change, login attempts limited, an
idle timeout); machines use API tokens. Every /api/ and /console route needs one of the
two; the public ones are login, Open311 intake, signed crew links, signed webhooks,
published CAP and warning pages, and health. Roles: viewer < dispatcher < supervisor <
admin."""

from __future__ import annotations

import hashlib
import html
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta

from aiohttp import web
from sqlalchemy import delete, select, update

from pingan.clock import utcnow
from pingan.http.context import credential_of, ctx, json_error
from pingan.http.validation import Invalid, read_form
from pingan.store import as_utc, record_audit
from pingan.store.schema import sessions, users
from pingan.users import role_at_least, verify_password

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
COOKIE = "pingan_session"
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
PROTECTED = ("/api/", "/console")
CHANGES = ("POST", "PUT", "PATCH", "DELETE")
# Per (account, address) 5, so nobody can lock a colleague out from elsewhere; per
# address more, as a duty room shares one address behind its router.
LOGIN_FAILURES_ALLOWED = {"user": 5, "addr": 30}
LOGIN_WINDOW_S = 15 * 60
# Routes that need more than their method's default (changes: a dispatcher; reads: a
# viewer).
NEEDS = {
    ("POST", "/api/incidents/{id}/release"): "supervisor",
    ("POST", "/api/crews/{id}/overrides"): "supervisor",
    # What was sent to whom, by phone number: for those who act on it, not viewers.
    ("GET", "/api/messages"): "dispatcher",
}


def required_role(method: str, route: str) -> str:
    method = "GET" if method == "HEAD" else method
    default = "dispatcher" if method in CHANGES else "viewer"
    return NEEDS.get((method, route), default)


class LoginLimiter:
    """At most LOGIN_FAILURES_ALLOWED failures per username and per address in the
    window; beyond, 429 until the oldest failure ages out."""

    def __init__(self) -> None:
        self.failures: dict[str, list[float]] = {}

    def _recent(self, key: str, now: float) -> list[float]:
        kept = [t for t in self.failures.get(key, []) if now - t < LOGIN_WINDOW_S]
        self.failures[key] = kept
        return kept

    def blocked_for(self, keys: list[str]) -> int:
        now = time.monotonic()
        waits = [
            int(LOGIN_WINDOW_S - (now - self._recent(k, now)[0])) + 1
            for k in keys
            if len(self._recent(k, now)) >= LOGIN_FAILURES_ALLOWED[k.split(":")[0]]
        ]
        return max(waits, default=0)

    def fail(self, keys: list[str]) -> None:
        now = time.monotonic()
        for key in keys:
            self._recent(key, now).append(now)


LIMITER = web.AppKey("login_limiter", LoginLimiter)


def login_keys(username: str, remote: str) -> list[str]:
    """What failed logins count against: this account from this address, and this
    address for any account."""
    return [f"user:{username}@{remote}", f"addr:{remote}"]


def _session_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def current_session(request: web.Request) -> tuple[str, str, str] | None:
    """(username, role, csrf) of a live session; an idle one is ended."""
    raw = request.cookies.get(COOKIE)
    if not raw:
        return None
    c = ctx(request)
    now = utcnow()
    key = _session_key(raw)
    with c.store.transaction() as conn:
        row = conn.execute(
            select(sessions.c.last_seen, sessions.c.csrf, users.c.username, users.c.role)
            .join(users, users.c.username == sessions.c.username)
            .where(sessions.c.id == key)
        ).first()
        if row is None:
            return None
        if now - as_utc(row.last_seen) > timedelta(minutes=c.settings.session_idle_min):  # type: ignore[operator]
            conn.execute(delete(sessions).where(sessions.c.id == key))
            return None
        if now - as_utc(row.last_seen) > timedelta(seconds=30):  # type: ignore[operator]
            conn.execute(update(sessions).where(sessions.c.id == key).values(last_seen=now))
    return row.username, row.role, row.csrf


def _route_of(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else request.path


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    path = request.path
    if path.startswith(PUBLIC) or not path.startswith(PROTECTED):
        return await handler(request)
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        credential = credential_of(token.strip(), ctx(request).api_tokens)
        if credential is None:
            return _refuse(request, 401, "missing or invalid bearer token")
        request["actor"], request["role"] = credential.name, "admin"  # act for the bureau
        request["named"] = credential.named
        return await handler(request)
    session = current_session(request)
    if session is None:
        if path.startswith("/console"):
            raise web.HTTPFound(f"/login?next={path}")
        return _refuse(request, 401, "missing or invalid bearer token")
    username, role, csrf = session
    if request.method in CHANGES and not secrets.compare_digest(
        request.headers.get("X-CSRF-Token", ""), csrf
    ):
        return json_error(403, "missing or wrong X-CSRF-Token for this session")
    needed = required_role(request.method, _route_of(request))
    if not role_at_least(role, needed):
        return json_error(403, f"role {role} may not do this (needs {needed})", code="role")
    request["actor"], request["role"], request["csrf"] = username, role, csrf
    request["named"] = True
    return await handler(request)


def _refuse(request: web.Request, status: int, message: str) -> web.Response:
    response = json_error(status, message)
    response.headers["WWW-Authenticate"] = 'Bearer realm="pingan"'
    return response


LOGIN_PAGE = """<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>平安 登录</title>
<link rel="stylesheet" href="/login.css"></head><body class="login">
<form method="post" action="/login"><h1>平安 Ping'an</h1><p>{message}</p>
<input type="hidden" name="next" value="{next}">
<label>用户名 Username <input name="username" autocomplete="username" required autofocus></label>
<label>密码 Password <input name="password" type="password" autocomplete="current-password"
required></label><button type="submit">登录 Log in</button></form></body></html>"""

LOGIN_CSS = """body.login{font-family:"WenQuanYi Micro Hei",sans-serif;display:flex;
justify-content:center;align-items:center;height:100vh;margin:0;background:#eef1f5}
form{background:#fff;padding:28px;border-radius:10px;width:320px;
box-shadow:0 2px 8px rgba(0,0,0,.15)}label{display:block;margin:12px 0}
input{width:100%;padding:8px;font-size:16px;box-sizing:border-box}
button{width:100%;padding:10px;font-size:16px;background:#0a66c2;color:#fff;border:0;
border-radius:6px}p{color:#b00}"""


async def login_page(request: web.Request) -> web.Response:
    nxt = request.query.get("next", "/console/")
    return web.Response(
        text=LOGIN_PAGE.format(message="", next=html.escape(_safe_next(nxt))),
        content_type="text/html",
        charset="utf-8",
    )


async def login_css(request: web.Request) -> web.Response:
    return web.Response(text=LOGIN_CSS, content_type="text/css")


def _safe_next(nxt: str) -> str:
    return nxt if nxt.startswith("/console") else "/console/"


async def login(request: web.Request) -> web.Response:
    c = ctx(request)
    try:
        form = await read_form(request)
    except Invalid as exc:
        return web.Response(
            status=exc.status,
            content_type="text/html",
            charset="utf-8",
            text=LOGIN_PAGE.format(message=html.escape(str(exc)), next="/console/"),
        )
    username = str(form.get("username", "")).strip()[:64]
    password = str(form.get("password", ""))[:200]
    nxt = _safe_next(str(form.get("next", "/console/")))
    keys = login_keys(username, request.remote or "-")
    limiter = request.app[LIMITER]
    wait = limiter.blocked_for(keys)
    if wait:
        return web.Response(
            status=429,
            content_type="text/html",
            charset="utf-8",
            headers={"Retry-After": str(wait)},
            text=LOGIN_PAGE.format(
                message=f"尝试次数过多，请{wait}秒后再试。Too many attempts.", next=html.escape(nxt)
            ),
        )
    with c.store.read() as conn:
        row = conn.execute(select(users).where(users.c.username == username)).first()
    now = utcnow()
    if row is None or not verify_password(password, row.password):
        limiter.fail(keys)
        with c.store.transaction() as conn:
            record_audit(
                conn,
                now,
                username or "-",
                "login.failed",
                "user",
                username or "-",
                {"remote": request.remote or ""},
            )
        return web.Response(
            status=401,
            content_type="text/html",
            charset="utf-8",
            text=LOGIN_PAGE.format(
                message="用户名或密码错误。Wrong username or password.", next=html.escape(nxt)
            ),
        )
    raw = secrets.token_urlsafe(32)
    with c.store.transaction() as conn:
        conn.execute(
            sessions.insert().values(
                id=_session_key(raw),
                username=username,
                csrf=secrets.token_urlsafe(24),
                created_at=now,
                last_seen=now,
            )
        )
        record_audit(conn, now, username, "login", "user", username, {})
    response = web.HTTPSeeOther(nxt)
    response.set_cookie(
        COOKIE,
        raw,
        httponly=True,
        samesite="Strict",
        path="/",
        secure=c.settings.effective_public_url.startswith("https://"),
    )
    raise response


async def logout(request: web.Request) -> web.Response:
    raw = request.cookies.get(COOKIE)
    if raw:
        with ctx(request).store.transaction() as conn:
            conn.execute(delete(sessions).where(sessions.c.id == _session_key(raw)))
    response = web.HTTPSeeOther("/login")
    response.del_cookie(COOKIE, path="/")
    raise response


def add_routes(app: web.Application) -> None:
    app[LIMITER] = LoginLimiter()
    app.router.add_get("/login", login_page)
    app.router.add_get("/login.css", login_css)
    app.router.add_post("/login", login)
    app.router.add_post("/api/logout", logout)

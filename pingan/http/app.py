"""The HTTP shell: Open311 intake, the dispatcher/crew API, health. Handlers parse,
call the core or a command in pingan/actions.py, and format; nothing else."""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from pingan.http.ratelimit import RateLimits
from pingan.settings import Settings
from pingan.store import Store
from playbooks.registry import PlaybookRegistry

log = logging.getLogger("pingan.http")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Bodies larger than this are refused before they are read (a report is a few KB).
MAX_BODY = 64 * 1024


@dataclass
class Context:
    settings: Settings
    store: Store
    playbooks: PlaybookRegistry
    api_tokens: tuple[str, ...]
    open311_keys: tuple[str, ...]
    limits: RateLimits = field(default_factory=lambda: RateLimits({"key": 300, "caller": 6}))
    twilio_auth_token: str = ""
    link_secret: str = ""


CONTEXT = web.AppKey("context", Context)


def ctx(request: web.Request) -> Context:
    return request.app[CONTEXT]


def json_response(data: Any, status: int = 200) -> web.Response:
    """JSON with Chinese left readable (UTF-8), not \\u-escaped."""
    return web.json_response(data, status=status, dumps=_dumps)


def _dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False)


def json_error(status: int, message: str) -> web.Response:
    return json_response({"error": message}, status=status)


def token_name(presented: str, accepted: tuple[str, ...]) -> str | None:
    """Which configured token this is: entries are "name=token" (the name is who acts,
    in the audit and for the two-person rule) or a bare token ("token-N")."""
    found = None
    # Compare against every token so timing says nothing about which one nearly matched.
    for n, entry in enumerate(accepted, start=1):
        name, sep, token = entry.partition("=")
        if not sep:
            name, token = f"token-{n}", entry
        if hmac.compare_digest(presented.encode(), token.encode()):
            found = name
    return found


def token_ok(presented: str, accepted: tuple[str, ...]) -> bool:
    return token_name(presented, accepted) is not None


def actor_of(request: web.Request) -> str:
    return str(request.get("actor", "api"))


def may_see_phones(request: web.Request) -> bool:
    """Dispatchers logged in as people see callers' numbers (to call back); machines
    and viewers see them masked."""
    from pingan.users import role_at_least

    return "csrf" in request and role_at_least(str(request.get("role")), "dispatcher")


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """No stack trace ever reaches a client: unknown failures become a short 500."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status >= 400 and exc.content_type != "application/json":
            return json_error(exc.status, exc.reason)
        raise
    except Exception:
        log.exception("unhandled error method=%s path=%s", request.method, request.path)
        return json_error(500, "internal error; it has been logged")


async def healthz(request: web.Request) -> web.Response:
    from pingan.store import component_state

    worker = component_state(ctx(request).store, "worker")
    return json_response({"status": "ok", "worker": worker or "unknown"})


def build_http_app(context: Context) -> web.Application:
    from pingan.http import api, auth, console, crew, hotline, open311, warnings_api
    from pingan.http.auth import auth_middleware

    app = web.Application(
        middlewares=[errors_middleware, auth_middleware], client_max_size=MAX_BODY
    )
    app[CONTEXT] = context
    app.router.add_get("/healthz", healthz)
    open311.add_routes(app)
    api.add_routes(app)
    hotline.add_routes(app)
    crew.add_routes(app)
    warnings_api.add_routes(app)
    auth.add_routes(app)
    console.add_routes(app)
    return app

"""The HTTP shell: Open311 intake, the dispatcher/crew API, health. Handlers parse,
call the core or a command in pingan/actions.py, and format; nothing else."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from prometheus_client import CONTENT_TYPE_LATEST

from pingan.clock import utcnow
from pingan.http.context import CONTEXT, Context, ctx, json_error, json_response
from pingan.http.validation import Invalid
from pingan.metrics import watch_store

log = logging.getLogger("pingan.http")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Bodies larger than this are refused before they are read (a report is a few KB).
MAX_BODY = 64 * 1024


# Headers of an HTTP error worth keeping when its body is rewritten (405 must say Allow).
KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate", "Location")


def error_reply(request: web.Request, status: int, message: str) -> web.Response:
    """An error in the format of the route that was asked: Open311's list of errors
    under /open311/ (XML for .xml), JSON elsewhere."""
    if request.path.startswith("/open311/"):
        from pingan.http.open311 import open311_error

        fmt = "xml" if request.path.endswith(".xml") else "json"
        return open311_error(status, message, fmt)
    return json_error(status, message)


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """No stack trace ever reaches a client: bad input is a 4xx naming the field,
    a client that hangs up is not an error, unknown failures become a short 500."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status >= 400 and exc.content_type != "application/json":
            reply = error_reply(request, exc.status, exc.reason)
            reply.headers.update({k: v for k, v in exc.headers.items() if k in KEPT_HEADERS})
            return reply
        raise
    except Invalid as exc:
        return error_reply(request, exc.status, str(exc))
    except ConnectionResetError:
        # The client went away mid-body: nothing to answer and nothing to fix.
        log.info("client disconnected method=%s path=%s", request.method, request.path)
        return json_error(400, "body: the connection closed before the body ended")
    except Exception:
        log.exception("unhandled error method=%s path=%s", request.method, request.path)
        return json_error(500, "internal error; it has been logged")


def quiet_malformed_requests(record: logging.LogRecord) -> bool:
    """aiohttp answers a malformed request (a URL past 8 KB, a broken header) with 400
    itself, then logs it as an ERROR with a traceback: the client's mistake, not ours.
    Kept as one INFO line."""
    exc = record.exc_info[1] if record.exc_info else None
    if isinstance(exc, HttpProcessingError | ConnectionResetError):
        record.levelno, record.levelname = logging.INFO, "INFO"
        record.msg, record.args = f"{record.getMessage()}: {type(exc).__name__}", ()
        record.exc_info = record.exc_text = None
    return True


logging.getLogger("aiohttp.server").addFilter(quiet_malformed_requests)


async def readyz(request: web.Request) -> web.Response:
    """200 when the database, the broker, the relay and a worker are all up; else 503
    naming what is not."""
    from pingan.http.readiness import readiness

    c = ctx(request)
    checks = await asyncio.to_thread(readiness, c.store, c.bootstrap, utcnow())
    ready = all(check.ok for check in checks.values())
    body = {
        "ready": ready,
        "checks": {name: {"ok": ch.ok, "detail": ch.detail} for name, ch in checks.items()},
    }
    return json_response(body, status=200 if ready else 503)


async def metrics(request: web.Request) -> web.Response:
    """Prometheus's text format (pingan/metrics.py); read from the database, so off
    the event loop."""
    from pingan.metrics import exposition

    body = await asyncio.to_thread(exposition)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _report_shared_state(app: web.Application) -> None:
    watch_store(app[CONTEXT].store)  # /metrics reads this process's store


async def healthz(request: web.Request) -> web.Response:
    from pingan.store import component_state

    worker = component_state(ctx(request).store, "worker")
    return json_response({"status": "ok", "worker": worker or "unknown"})


def build_http_app(context: Context) -> web.Application:
    from pingan.http import (
        api,
        auth,
        console,
        crew,
        headers,
        hotline,
        open311,
        voice,
        warnings_api,
    )
    from pingan.http.auth import auth_middleware

    app = web.Application(
        middlewares=[errors_middleware, auth_middleware], client_max_size=MAX_BODY
    )
    app[CONTEXT] = context
    headers.install(app)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.on_startup.append(_report_shared_state)
    open311.add_routes(app)
    api.add_routes(app)
    hotline.add_routes(app)
    voice.add_routes(app)
    crew.add_routes(app)
    warnings_api.add_routes(app)
    auth.add_routes(app)
    console.add_routes(app)
    return app

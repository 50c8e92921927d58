"""Headers every answer carries, so a page of ours cannot run script it did not load
from us, cannot be framed by another site, and does not leak its URL (a crew link is a
credential) to the sites it links to."""

from __future__ import annotations

from aiohttp import web

# Scripts only from our own files (no inline script, no eval); styles may be inline
# (the crew page and login carry their own small stylesheet); no plugins, no <base>,
# no framing, forms post only to us.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


def install(app: web.Application) -> None:
    app.on_response_prepare.append(add_security_headers)

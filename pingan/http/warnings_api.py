"""Citizen warnings over HTTP: draft, preview, approve (two-person rule), update or
cancel; Twilio delivery receipts; every sent warning as CAP 1.2 and in an Atom feed so
other systems can relay it, and as a public page a citizen's WeChat card links to."""

from __future__ import annotations

import asyncio
import html
from typing import Any
from xml.etree.ElementTree import Element, SubElement, tostring

from aiohttp import web
from pydantic import BaseModel, Field, StrictStr
from sqlalchemy import select, update

from alerts import citizen_warnings as cw
from alerts.cap import published_alert
from alerts.ledger import RECEIPT_STATUSES, apply_receipt
from alerts.render import CARD_LEVEL_SUFFIX, local_time
from pingan.city import load_city
from pingan.clock import utcnow
from pingan.http.context import actor_of, acts_as_person, ctx, json_error, json_response
from pingan.http.hotline import twilio_signed
from pingan.http.pages import mobile_page
from pingan.http.validation import (
    clean_text,
    clean_tree,
    is_id,
    model_of,
    parse_when,
    read_form,
    read_json,
)
from pingan.intake.feeds.cap import CapArea, cap_bytes, parse_circle, parse_polygon, write_cap
from pingan.phones import e164_or_raw
from pingan.store import as_utc, claim_event, mark_component
from pingan.store.schema import citizen_warnings, subscribers
from pingan.vocabulary import WARNING_EVENTS, level_label

_last_receipt_mark = [0.0]  # when a delivery receipt last touched the live views
RECEIPT_CONSUMER = "webhook:twilio-status"


class DraftBody(BaseModel):
    event: StrictStr = Field(max_length=40)
    level: StrictStr = Field(max_length=20)
    districts: list[StrictStr] = Field(default_factory=list, max_length=50)
    template: StrictStr = Field(max_length=80)
    channels: list[StrictStr] = Field(["sms"], min_length=1, max_length=2)
    expires: StrictStr | None = None
    # Targeting by shape, in CAP's own syntax: "lat,lon lat,lon …" (closed), "lat,lon km".
    polygon: StrictStr | None = Field(None, max_length=8000)
    circle: StrictStr | None = Field(None, max_length=100)


def _target(body: DraftBody) -> CapArea | None:
    """The shape a draft is targeted by, or None (by district); FeedRejected names
    the field and what is wrong with it."""
    polygons = (parse_polygon(body.polygon, "polygon"),) if body.polygon else ()
    circles = (parse_circle(body.circle, "circle"),) if body.circle else ()
    return CapArea("", polygons, circles) if polygons or circles else None


class CorrectionBody(BaseModel):
    msg_type: StrictStr = ""
    text: StrictStr = Field("", max_length=1000)


async def draft(request: web.Request) -> web.Response:
    body = model_of(DraftBody, await read_json(request))
    expires = parse_when(body.expires, "expires") if body.expires else None
    try:
        area = _target(body)
        result = await asyncio.to_thread(
            cw.create_draft,
            ctx(request).store,
            body.event,
            body.level,
            body.districts,
            body.template,
            body.channels,
            actor_of(request),
            utcnow(),
            expires,
            threshold=ctx(request).settings.approval_threshold,
            area=area,
        )
    except (cw.WarningRefused, ValueError, KeyError) as exc:
        return json_error(400, str(exc))
    return json_response(result, status=201)


async def preview(request: web.Request) -> web.Response:
    districts = [d for d in request.query.get("districts", "").split(",") if d]
    unknown = [d for d in districts if d not in load_city().districts]
    if not districts or unknown:
        return json_error(400, f"districts: {unknown or 'at least one'}")
    with ctx(request).store.read() as conn:
        return json_response(cw.preview(conn, districts))


def _id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not is_id(raw):
        raise web.HTTPNotFound(reason=f"warning {raw[:40]!r} not found")
    return int(raw)


async def approve(request: web.Request) -> web.Response:
    if not acts_as_person(request):
        # The two-person rule counts people: a token shared by machines names nobody,
        # so it can neither be the second person nor approve on its own.
        return json_error(
            403,
            f"two-person rule: {actor_of(request)} is a shared API token and names no "
            "person; approve as a logged-in dispatcher or with a named token "
            "(PINGAN_API_TOKENS=name:token)",
        )
    try:
        chunks = await asyncio.to_thread(
            cw.approve,
            ctx(request).store,
            _id(request),
            actor_of(request),
            utcnow(),
            "required",
            threshold=ctx(request).settings.approval_threshold,
        )
    except cw.WarningRefused as exc:
        if "two-person rule" in str(exc):
            return json_error(403, str(exc), code="two_person_rule")
        return json_error(409, str(exc))
    return json_response({"id": _id(request), "status": "sending", "chunks": chunks})


async def correct(request: web.Request) -> web.Response:
    body = model_of(CorrectionBody, await read_json(request))
    try:
        text = clean_text(body.text).strip()
        if not text:
            raise cw.WarningRefused("text: required (what the correction says)")
        correction = await asyncio.to_thread(
            cw.correct,
            ctx(request).store,
            _id(request),
            body.msg_type,
            text,
            actor_of(request),
            utcnow(),
        )
    except cw.WarningRefused as exc:
        return json_error(400 if "msg_type" in str(exc) or "text" in str(exc) else 409, str(exc))
    return json_response({"id": correction, "corrects": _id(request)}, status=201)


async def show(request: web.Request) -> web.Response:
    warning_id = _id(request)
    with ctx(request).store.read() as conn:
        row = conn.execute(
            select(citizen_warnings).where(citizen_warnings.c.id == warning_id)
        ).first()
        if row is None:
            return json_error(404, f"warning {warning_id} not found")
        stats = cw.stats(conn, warning_id)
    return json_response(
        {
            "id": row.id,
            "event": row.event,
            "level": row.level,
            "districts": row.districts,
            "status": row.status,
            "msg_type": row.msg_type,
            "corrects": row.corrects,
            "text_zh": row.text_zh,
            "text_en": row.text_en,
            "recipients": row.recipients,
            "drafted_by": row.drafted_by,
            "approved_by": row.approved_by,
            "stats": stats,
        }
    )


async def status_callback(request: web.Request) -> web.Response:
    """Twilio's delivery receipts move the ledger forward (alerts/ledger.py: every
    status Twilio sends, none backwards); forged ones are refused."""
    c = ctx(request)
    form = await read_form(request)
    params = {k: v for k, v in form.items() if isinstance(v, str)}
    if not await asyncio.to_thread(twilio_signed, request, params):
        return json_error(403, "X-Twilio-Signature: missing or not valid for this request")
    sid, status = params.get("MessageSid", ""), params.get("MessageStatus", "")
    if status not in RECEIPT_STATUSES:
        known = ", ".join(sorted(RECEIPT_STATUSES))
        return json_error(400, f"MessageStatus: {status[:40]!r} is not one of {known}")
    if len(sid) > 40:
        return json_error(400, "MessageSid: longer than 40 characters")
    receipt = f"{sid}:{status}"
    now = utcnow()
    # The replay guard is claimed in the transaction that applies the receipt: claimed
    # alone first, a process dying before the effect left it claimed and never applied,
    # and Twilio's retry (through another `http`) was taken for a replay.
    with c.store.transaction() as conn:
        if sid and not claim_event(conn, RECEIPT_CONSUMER, receipt, now):
            return web.Response(status=204)  # this receipt was applied before: a replay
        apply_receipt(conn, sid, status, params.get("ErrorCode", "")[:40] or None, now)
        if params.get("ErrorCode") == "21610":  # the recipient has opted out at Twilio
            conn.execute(
                update(subscribers)
                .where(subscribers.c.phone == e164_or_raw(params.get("To", "")))
                .values(opted_out_at=now)
            )
    if now.timestamp() - _last_receipt_mark[0] > 1.0:  # tell live views, at most 1/s
        _last_receipt_mark[0] = now.timestamp()
        mark_component(c.store, "deliveries", "ok", f"last receipt {sid} {status}", now)
    return web.Response(status=204)


def _published(conn: Any) -> list[Any]:
    return conn.execute(
        select(citizen_warnings)
        .where(citizen_warnings.c.status.in_(("sent", "cancelled")))
        .order_by(citizen_warnings.c.id.desc())
        .limit(200)
    ).all()


def _published_one(conn: Any, raw: str) -> Any:
    """The published warning (sent, or sent and since cancelled) with this id, or None."""
    if not is_id(raw):
        return None
    row = conn.execute(select(citizen_warnings).where(citizen_warnings.c.id == int(raw))).first()
    return row if row is not None and row.status in ("sent", "cancelled") else None


async def cap_alert(request: web.Request) -> web.Response:
    raw = request.match_info["id"]
    alert = None
    if is_id(raw):
        with ctx(request).store.read() as conn:
            alert = published_alert(conn, int(raw))
    if alert is None:
        return json_error(404, f"no published warning {raw[:40]!r}")
    # Stored before input was cleaned, a control character must not make it malformed.
    body = cap_bytes(clean_tree(write_cap(alert)))
    return web.Response(body=body, content_type="application/cap+xml", charset="utf-8")


def _warning_html(row: Any, corrections: list[Any]) -> str:
    """A sent warning for anyone to read: the page a WeChat card links to, where the
    whole text is (a card shows 20 characters a field). Every value escaped."""
    esc = html.escape
    city = load_city()
    suffix = CARD_LEVEL_SUFFIX.get(row.msg_type, "预警")
    title = WARNING_EVENTS.get(row.event, row.event) + level_label(row.level)["zh"] + suffix
    notices = "".join(
        f'<div class="card"><b>{"此预警已解除" if c.msg_type == "Cancel" else "此预警已更新"}'
        f'</b>：<a href="/warnings/{int(c.id)}">'
        f"{esc(local_time(as_utc(c.approved_at or c.created_at)))}的消息</a></div>"  # type: ignore[arg-type]
        for c in corrections
    )
    area = "、".join(city.districts[d].zh for d in row.districts if d in city.districts)
    issued = local_time(as_utc(row.approved_at or row.created_at))  # type: ignore[arg-type]
    until = (
        f"<div>有效至 Until: {esc(local_time(as_utc(row.expires_at)))}</div>"  # type: ignore[arg-type]
        if row.expires_at
        else ""
    )
    english = f'<p lang="en">{esc(row.text_en)}</p>' if row.text_en != row.text_zh else ""
    body = f"""<h1>{esc(title)}</h1>{notices}
<div class="card"><div>区域 Area: {esc(area)}</div><div>发布 Issued: {esc(issued)}</div>
{until}<div>发布单位: 漯河市城市管理局</div></div>
<div class="card"><p id="text">{esc(row.text_zh)}</p>{english}</div>
<p>求助请拨 {esc(cw.HOTLINE)} · <a href="/cap/alerts/{int(row.id)}.xml">CAP 1.2</a></p>"""
    return mobile_page(f"{title} · 漯河市城市管理局", body)


async def warning_page(request: web.Request) -> web.Response:
    """GET /warnings/{id}: a published warning (sent or since cancelled), public."""
    with ctx(request).store.read() as conn:
        row = _published_one(conn, request.match_info["id"])
        corrections = (
            conn.execute(
                select(citizen_warnings)
                .where(
                    citizen_warnings.c.corrects == row.id,
                    citizen_warnings.c.status.in_(("sent", "cancelled")),
                )
                .order_by(citizen_warnings.c.id.desc())
            ).all()
            if row is not None
            else []
        )
    if row is None:
        return web.Response(
            status=404,
            text=mobile_page("没有这条预警", "<h1>没有这条预警</h1><p>No such warning.</p>"),
            content_type="text/html",
            charset="utf-8",
        )
    return web.Response(
        text=_warning_html(row, corrections), content_type="text/html", charset="utf-8"
    )


async def cap_feed(request: web.Request) -> web.Response:
    base = ctx(request).settings.effective_public_url.rstrip("/")
    with ctx(request).store.read() as conn:
        rows = _published(conn)
    feed = Element("feed", xmlns="http://www.w3.org/2005/Atom")
    SubElement(feed, "id").text = f"{base}/cap/feed.atom"
    SubElement(feed, "title").text = "漯河市城市管理局 预警 Luohe urban-management warnings"
    updated = max((as_utc(r.approved_at or r.created_at) for r in rows), default=utcnow())
    SubElement(feed, "updated").text = updated.isoformat()  # type: ignore[union-attr]
    SubElement(SubElement(feed, "author"), "name").text = "漯河市城市管理局"
    for row in rows:
        entry = SubElement(feed, "entry")
        SubElement(entry, "id").text = f"{base}/cap/alerts/{row.id}.xml"
        SubElement(entry, "title").text = row.text_zh[:80]
        SubElement(entry, "updated").text = as_utc(row.approved_at or row.created_at).isoformat()  # type: ignore[union-attr]
        SubElement(
            entry, "link", href=f"{base}/cap/alerts/{row.id}.xml", type="application/cap+xml"
        )
    clean_tree(feed)  # one stored control character must not break the whole feed
    body = b'<?xml version="1.0" encoding="UTF-8"?>\n' + tostring(feed, encoding="unicode").encode()
    return web.Response(body=body, content_type="application/atom+xml", charset="utf-8")


async def listing(request: web.Request) -> web.Response:
    with ctx(request).store.read() as conn:
        rows = conn.execute(
            select(citizen_warnings).order_by(citizen_warnings.c.id.desc()).limit(50)
        ).all()
        out = [
            {
                "id": r.id,
                "event": r.event,
                "level": r.level,
                "districts": r.districts,
                "channels": r.channels,
                "status": r.status,
                "msg_type": r.msg_type,
                "recipients": r.recipients,
                "drafted_by": r.drafted_by,
                "approved_by": r.approved_by,
                "text_zh": r.text_zh,
                "stats": cw.stats(conn, r.id),
            }
            for r in rows
        ]
    return json_response({"warnings": out})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/citizen-warnings", draft)
    app.router.add_get("/api/citizen-warnings", listing)
    app.router.add_get("/api/citizen-warnings/preview", preview)
    app.router.add_get("/api/citizen-warnings/{id}", show)
    app.router.add_post("/api/citizen-warnings/{id}/approve", approve)
    app.router.add_post("/api/citizen-warnings/{id}/correct", correct)
    app.router.add_post("/webhooks/twilio/status", status_callback)
    app.router.add_get("/cap/alerts/{id}.xml", cap_alert)
    app.router.add_get("/cap/feed.atom", cap_feed)
    app.router.add_get("/warnings/{id}", warning_page)

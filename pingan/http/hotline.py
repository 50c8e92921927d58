"""Hotline intake besides Open311: SMS through Twilio's inbound webhook (signature
checked), reports an operator types in from a phone call, and the review queue where
dispatchers place and classify what the system was unsure of."""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from xml.sax.saxutils import escape

from aiohttp import web
from pydantic import BaseModel, Field, StrictFloat, StrictInt, StrictStr
from sqlalchemy import delete, select
from sqlalchemy.exc import SQLAlchemyError
from twilio.request_validator import RequestValidator

from alerts.ledger import record_sent
from alerts.render import sms_reply_text
from alerts.subscribers import opt_keyword, set_opt_out
from pingan.actions import (
    NotAllowed,
    NotFound,
    NotWaiting,
    accept_free_text,
    record_satisfaction,
    resolve_review,
)
from pingan.clock import utcnow
from pingan.http.context import ctx, json_error, json_response, may_see_phones
from pingan.http.crew import apply_sms_reply, crew_for_phone
from pingan.http.ratelimit import RateLimited
from pingan.http.validation import (
    Invalid,
    clean_text,
    is_id,
    model_of,
    parse_city_position,
    read_form,
    read_json,
)
from pingan.labels import review_label
from pingan.phones import PhoneInvalid, e164, e164_or_raw
from pingan.privacy import mask_phone
from pingan.queries import report_view
from pingan.store import claim_event, new_event_id, record_audit
from pingan.store.schema import processed_events, reports

log = logging.getLogger("pingan.hotline")
MAX_SMS_BODY = 1600  # Twilio's own limit for one inbound message


def twiml(message: str | None) -> web.Response:
    inner = f"<Message>{escape(message)}</Message>" if message else ""
    return web.Response(
        text=f'<?xml version="1.0" encoding="UTF-8"?><Response>{inner}</Response>',
        content_type="text/xml",
        charset="utf-8",
    )


def _public_url(request: web.Request) -> str:
    """The URL Twilio signed: our public base plus the path and query it called."""
    base = ctx(request).settings.effective_public_url.rstrip("/")
    return base + request.path_qs


async def sms_inbound(request: web.Request) -> web.Response:
    c = ctx(request)
    try:
        form = await read_form(request)
    except Invalid as exc:
        return json_error(exc.status, f"{exc} (not a Twilio form post)")
    params = {k: v for k, v in form.items() if isinstance(v, str)}
    if not await asyncio.to_thread(twilio_signed, request, params):
        return json_error(403, "X-Twilio-Signature: missing or not valid for this request")
    sid = params.get("MessageSid", "")
    if len(sid) > 64:
        return json_error(400, "MessageSid: longer than 64 characters")
    if sid and not await asyncio.to_thread(first_delivery, c.store, SMS_CONSUMER, sid):
        # A signed request seen before: Twilio retrying, or someone replaying it.
        log.info("sms webhook replay ignored sid=%s", sid)
        return twiml(None)
    phone = e164_or_raw(params.get("From", ""))
    try:
        reply = await _sms(request, phone, params)
    except Exception:
        if sid:  # not handled: let Twilio's retry through
            await asyncio.to_thread(forget_delivery, c.store, SMS_CONSUMER, sid)
        raise
    if reply is not None:  # the person's message history shows the answer they got
        await asyncio.to_thread(record_reply, c.store, sid, phone, reply, utcnow())
    return twiml(reply)


def record_reply(store: Any, sid: str, phone: str, text: str, now: Any) -> None:
    """The TwiML answer to an inbound SMS, in the send ledger (Twilio sends it; no call
    of ours). Best effort: the sender has been answered whether or not this is kept."""
    key = f"reply:{sid or new_event_id()}"
    try:
        with store.transaction() as conn:
            record_sent(conn, key, "sms", phone, text, now)
    except SQLAlchemyError as exc:
        log.warning("sms reply not recorded to=%s: %s", mask_phone(phone), type(exc).__name__)


async def _sms(request: web.Request, phone: str, params: dict[str, str]) -> str | None:
    """What to answer an inbound SMS with (None: nothing)."""
    c = ctx(request)
    body = clean_text(params.get("Body", "")).strip()[:MAX_SMS_BODY]
    if not phone:
        return None
    try:
        c.limits.check("caller", phone)
    except RateLimited:
        log.warning("sms rate limited from=%s", mask_phone(phone))
        return None  # no reply: a reply would cost money and feed the flood
    with c.store.read() as conn:
        crew = crew_for_phone(conn, phone)
    if crew is not None:  # a crew answering its assignment, not a citizen
        return await asyncio.to_thread(apply_sms_reply, c.store, crew.id, body)
    now = utcnow()
    keyword = opt_keyword(body)
    if keyword is not None:  # STOP/退订/TD, START: honoured at once, confirmed once
        changed = await asyncio.to_thread(set_opt_out, c.store, phone, keyword == "stop", now)
        if changed:
            return (
                "【漯河城管】您已退订预警短信，回复START可重新订阅。"
                if keyword == "stop"
                else "【漯河城管】已恢复订阅预警短信。回复TD退订。"
            )
        return None
    if body in ("1", "2", "3", "4", "5"):
        rated = await asyncio.to_thread(record_satisfaction, c.store, phone, int(body), now)
        if rated is not None:
            return f"【漯河城管】感谢您的评价（编号{rated}：{body}分）。"
    if not body:
        return "【漯河城管】请用文字描述问题和地点，例如：人民路口大树倒了。"
    result = await asyncio.to_thread(
        accept_free_text,
        c.store,
        body,
        phone,
        "sms",
        "sms",
        now,
        c.playbooks.index.report_categories(),
    )
    log.info(
        "sms report id=%s from=%s category=%s confidence=%.2f review=%s",
        result.accepted.report_id,
        mask_phone(phone),
        result.category,
        result.confidence,
        result.accepted.review_reason or "-",
    )
    return sms_reply_text(
        result.accepted.report_id,
        result.accepted.review_reason is not None,
        result.accepted.duplicate,
    )


SMS_CONSUMER = "webhook:twilio-sms"


def first_delivery(store: Any, consumer: str, key: str) -> bool:
    """True the first time this webhook delivery (a MessageSid) is seen, durably (the
    idempotency table the stream consumers use), so a replayed signed request, even
    after a restart, changes nothing."""
    with store.transaction() as conn:
        return claim_event(conn, consumer, key, utcnow())


def forget_delivery(store: Any, consumer: str, key: str) -> None:
    with store.transaction() as conn:
        conn.execute(
            delete(processed_events).where(
                processed_events.c.consumer == consumer, processed_events.c.event_id == key
            )
        )


def twilio_signed(request: web.Request, params: dict[str, str]) -> bool:
    """True if X-Twilio-Signature matches; a refusal is audited and logged."""
    c = ctx(request)
    signature = request.headers.get("X-Twilio-Signature", "")
    if RequestValidator(c.twilio_auth_token).validate(_public_url(request), params, signature):
        return True
    skipped = c.audit_budget.take("webhook.signature_refused")
    if skipped is not None:  # beyond the budget, refusals are counted, not each written
        with c.store.transaction() as conn:
            record_audit(
                conn,
                utcnow(),
                "webhook",
                "webhook.signature_refused",
                "webhook",
                request.path[:100],
                {
                    "from": mask_phone(params.get("From", "")[:40]),
                    "remote": request.remote or "",
                    "not_recorded": skipped,
                },
            )
    log.warning(
        "refused webhook with a bad signature path=%s remote=%s", request.path, request.remote
    )
    return False


Coordinate = StrictFloat | StrictInt | StrictStr | None


class OperatorReportBody(BaseModel):
    text: StrictStr = Field(min_length=1, max_length=4000)
    phone: StrictStr | StrictInt | None = None
    address: StrictStr | None = None
    lat: Coordinate = None
    long: Coordinate = None


class ReviewBody(BaseModel):
    service_code: StrictStr
    lat: Coordinate = None
    long: Coordinate = None
    address: StrictStr | None = None


async def operator_report(request: web.Request) -> web.Response:
    """A call taken by phone: the operator types what the caller said."""
    c = ctx(request)
    body = model_of(OperatorReportBody, await read_json(request))
    text = clean_text(body.text).strip()
    if not text:
        raise Invalid("text", "required (what the caller said)")
    lat, lon = parse_city_position(body.lat, body.long) or (None, None)
    try:
        phone = e164(str(body.phone)) if str(body.phone or "").strip() else None
    except PhoneInvalid as exc:
        raise Invalid("phone", str(exc).removeprefix("phone: ")) from None
    address = clean_text(body.address or "").strip()[:500] or None
    result = await asyncio.to_thread(
        accept_free_text,
        c.store,
        text,
        phone,
        "operator",
        "api",
        utcnow(),
        c.playbooks.index.report_categories(),
        lat,
        lon,
        address,
    )
    return json_response(
        {
            "service_request_id": str(result.accepted.report_id),
            "category": result.category,
            "confidence": result.confidence,
            "words": list(result.words),
            "duplicate": result.accepted.duplicate,
            "review_reason": result.accepted.review_reason,
        },
        status=201,
    )


async def review_queue(request: web.Request) -> web.Response:
    with ctx(request).store.read() as conn:
        rows = conn.execute(
            select(reports)
            .where(reports.c.review_reason.is_not(None), reports.c.incident_id.is_(None))
            .order_by(reports.c.id)
            .limit(500)
        ).all()
    return json_response(
        {
            "reports": [
                {
                    **report_view(r, may_see_phones(request)),
                    "review_reason": r.review_reason,
                    "classification": r.classification,
                    "labels": {"review": review_label(r.review_reason, r.classification)},
                }
                for r in rows
            ]
        }
    )


async def review_decide(request: web.Request) -> web.Response:
    c = ctx(request)
    raw = request.match_info["id"]
    if not is_id(raw):
        return json_error(404, f"report {raw[:40]!r} not found")
    body = model_of(ReviewBody, await read_json(request))
    code = body.service_code
    if code not in c.playbooks.index.report_categories():
        raise Invalid(
            "service_code",
            f"{code[:40]!r} is not one of {', '.join(c.playbooks.index.report_categories())}",
        )
    lat, lon = parse_city_position(body.lat, body.long) or (None, None)
    try:
        await asyncio.to_thread(
            resolve_review,
            c.store,
            int(raw),
            code,
            lat,
            lon,
            clean_text(body.address or "").strip()[:500] or None,
            "api",
            utcnow(),
        )
    except NotFound as exc:
        return json_error(404, str(exc))
    except NotAllowed as exc:
        return json_error(409 if isinstance(exc, NotWaiting) else 400, str(exc))
    return json_response({"service_request_id": raw, "status": "accepted"})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/webhooks/twilio/sms", sms_inbound)
    app.router.add_post("/api/reports", operator_report)
    app.router.add_get("/api/review", review_queue)
    app.router.add_post("/api/review/{id}", review_decide)

"""Twilio's webhooks for the calls that phone a silent crew leader (streams/calls.py):
the key pressed (<Gather>'s action) is the crew's answer, recorded exactly as an SMS
reply is (1 accepts, 2 declines; anything else asks again), and the call's status
callback moves the send ledger. Both are signed by Twilio and refused (403) otherwise."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from sqlalchemy import select

from alerts.ledger import apply_receipt
from alerts.voice import (
    ANSWER_PATH,
    CALL_RECEIPTS,
    STATUS_PATH,
    answered_twiml,
    reprompt_twiml,
)
from pingan.clock import utcnow
from pingan.core.assignments import CrewAction, call_answer
from pingan.http.context import ctx, json_error
from pingan.http.crew import crew_answer
from pingan.http.hotline import _public_url, twilio_signed
from pingan.http.validation import is_id, read_form
from pingan.privacy import mask_phone
from pingan.store import claim_event
from pingan.store.schema import assignments

log = logging.getLogger("pingan.http.voice")
STATUS_CONSUMER = "webhook:twilio-voice-status"
DECLINED_BY_CALL = "电话按键拒绝"  # the decline's note: a key carries no reason
REFUSED = "X-Twilio-Signature: missing or not valid for this request"


def _twiml(xml: str) -> web.Response:
    return web.Response(text=xml, content_type="text/xml", charset="utf-8")


async def _signed_form(request: web.Request) -> dict[str, str] | None:
    form = await read_form(request)
    params = {k: v for k, v in form.items() if isinstance(v, str)}
    return params if await asyncio.to_thread(twilio_signed, request, params) else None


async def call_answer_webhook(request: web.Request) -> web.Response:
    """POST /webhooks/twilio/voice/{assignment_id}/answer: <Gather>'s Digits."""
    c = ctx(request)
    params = await _signed_form(request)
    if params is None:
        return json_error(403, REFUSED)
    raw = request.match_info["assignment_id"]
    crew_id = None
    if is_id(raw):
        with c.store.read() as conn:
            crew_id = conn.execute(
                select(assignments.c.crew_id).where(assignments.c.id == int(raw))
            ).scalar()
    if crew_id is None:
        return json_error(404, f"assignment {raw[:40]!r} not found")
    action = call_answer(params.get("Digits", ""))
    if action is None:
        log.info("call answer not understood assignment=%s: asking again", raw)
        return _twiml(reprompt_twiml(_public_url(request)))
    note = DECLINED_BY_CALL if action is CrewAction.DECLINE else ""
    said = await asyncio.to_thread(crew_answer, c.store, int(raw), action, crew_id, "voice", note)
    log.info(
        "call answer assignment=%s from=%s action=%s",
        raw,
        mask_phone(params.get("To", "")[:40]),
        action.value,
    )
    return _twiml(answered_twiml(said))


async def call_status(request: web.Request) -> web.Response:
    """POST /webhooks/twilio/voice/status: the call's progress moves its ledger row
    (answered: delivered; busy, no-answer: undelivered), never backwards."""
    c = ctx(request)
    params = await _signed_form(request)
    if params is None:
        return json_error(403, REFUSED)
    sid, status = params.get("CallSid", ""), params.get("CallStatus", "")
    if status not in CALL_RECEIPTS:
        known = ", ".join(sorted(CALL_RECEIPTS))
        return json_error(400, f"CallStatus: {status[:40]!r} is not one of {known}")
    if not sid or len(sid) > 40:
        return json_error(400, f"CallSid: {sid[:40]!r} is not a call SID (1-40 characters)")
    receipt = CALL_RECEIPTS[status]
    error = f"call {status}" if receipt in ("undelivered", "failed", "canceled") else None
    now = utcnow()
    with c.store.transaction() as conn:  # claimed with its effect, as SMS receipts are
        if not claim_event(conn, STATUS_CONSUMER, f"{sid}:{status}", now):
            return web.Response(status=204)  # applied before: Twilio retrying, or a replay
        apply_receipt(conn, sid, receipt, error, now)
    log.info(
        "call status sid=%s to=%s status=%s", sid, mask_phone(params.get("To", "")[:40]), status
    )
    return web.Response(status=204)


def add_routes(app: web.Application) -> None:
    app.router.add_post(ANSWER_PATH, call_answer_webhook)
    app.router.add_post(STATUS_PATH, call_status)

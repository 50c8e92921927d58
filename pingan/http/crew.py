"""What crews use on their phones: the page behind the signed link in their SMS, and
SMS replies with the assignment code ("12 1" accept, "12 2 原因" decline, "12 3" on
scene, "12 9" done; or 收到, 出发, 到达, 完成, 拒绝)."""

from __future__ import annotations

import asyncio
import contextlib
import html
import re
from typing import Any

from aiohttp import web
from sqlalchemy import select

from pingan.actions import NotFound, apply_crew_action
from pingan.clock import utcnow
from pingan.core.assignments import (
    ACTIVE_STATES,
    MOVES,
    REPLY_DIGITS,
    CrewAction,
    TransitionRefused,
)
from pingan.crews import CITY_TZ
from pingan.geo import map_link
from pingan.http.context import ctx
from pingan.http.pages import mobile_page
from pingan.http.validation import Invalid, clean_text, read_form
from pingan.links import LinkInvalid, verify_link
from pingan.queries import first_report
from pingan.store import as_utc, record_audit
from pingan.store.schema import assignments, crews, incidents
from pingan.vocabulary import CREW_ACTIONS, AssignmentState, category_zh, status_label
from playbooks.snapshot import playbook_from_snapshot

WORDS = {
    "收到": CrewAction.ACK,
    "确认": CrewAction.ACK,
    "接单": CrewAction.ACK,
    "拒绝": CrewAction.DECLINE,
    "出发": CrewAction.EN_ROUTE,
    "到达": CrewAction.ON_SCENE,
    "到场": CrewAction.ON_SCENE,
    "完成": CrewAction.DONE,
}
REPLY = re.compile(
    r"^\s*(?:(\d{1,12})\s*)?(1|2|3|9|收到|确认|接单|拒绝|出发|到达|到场|完成)\s*(.*)$", re.S
)
# The moves a crew makes from its phone, as buttons; decline has its own form.
BUTTONS = {
    action: " ".join(CREW_ACTIONS[action])
    for action in (CrewAction.ACK, CrewAction.EN_ROUTE, CrewAction.ON_SCENE, CrewAction.DONE)
}


def parse_crew_reply(body: str) -> tuple[int | None, CrewAction, str] | None:
    match = REPLY.match(body)
    if not match:
        return None
    code, word, rest = match.groups()
    action = REPLY_DIGITS.get(word) or WORDS[word]
    return (int(code) if code else None), action, rest.strip()


def crew_for_phone(conn: Any, phone: str) -> Any:
    return conn.execute(select(crews.c.id, crews.c.name).where(crews.c.phone == phone)).first()


def apply_sms_reply(store: Any, crew_id: str, body: str) -> str:
    """The crew's SMS reply, applied; returns the text to send back."""
    parsed = parse_crew_reply(body)
    if parsed is None:
        return "【平安派单】未识别。请回复“任务号 1”接单、“任务号 3”到场、“任务号 9”完成。"
    code, action, rest = parsed
    if code is None:
        with store.read() as conn:
            active = (
                conn.execute(
                    select(assignments.c.id).where(
                        assignments.c.crew_id == crew_id,
                        assignments.c.state.in_([s.value for s in ACTIVE_STATES]),
                    )
                )
                .scalars()
                .all()
            )
        if len(active) != 1:
            return "【平安派单】您有多个或没有进行中的任务，请在回复前加任务号，如“12 1”。"
        code = active[0]
    return "【平安派单】" + crew_answer(store, code, action, crew_id, "sms", rest)


def crew_answer(
    store: Any, assignment_id: int, action: CrewAction, crew_id: str, via: str, note: str = ""
) -> str:
    """A crew's answer about one of its tasks (an SMS reply, a key pressed on a call),
    applied; returns what to tell them, in the same words whichever way they answered."""
    try:
        result = apply_crew_action(
            store,
            assignment_id,
            action,
            f"crew:{crew_id} via {via}",
            utcnow(),
            note=note,
            crew_id=crew_id,
        )
    except NotFound:
        return f"任务{assignment_id}不是派给您的班组，请核对任务号。"
    except TransitionRefused as exc:
        return f"任务{assignment_id}：{exc.zh}"
    return f"任务{assignment_id}：{status_label(result.state)['zh']}，已记录。"


def _refuse(request: web.Request, reason: str) -> web.Response:
    c = ctx(request)
    skipped = c.audit_budget.take("crew_link.refused")
    if skipped is not None:  # beyond the budget, refusals are counted, not each written
        with c.store.transaction() as conn:
            record_audit(
                conn,
                utcnow(),
                "crew-link",
                "crew_link.refused",
                "link",
                "-",
                {"reason": reason, "remote": request.remote or "", "not_recorded": skipped},
            )
    return web.Response(
        status=403,
        content_type="text/html",
        charset="utf-8",
        text=mobile_page(
            "链接无效 Link not valid",
            f"<p>{html.escape(reason)}。请使用短信中的最新链接，或回复任务号。</p>",
        ),
    )


def _verified(request: web.Request) -> tuple[int, str] | web.Response:
    try:
        return verify_link(ctx(request).link_secret, request.match_info["token"], utcnow())
    except LinkInvalid as exc:
        return _refuse(request, str(exc))


async def crew_page(request: web.Request) -> web.Response:
    verified = _verified(request)
    if isinstance(verified, web.Response):
        return verified
    assignment_id, crew_id = verified
    with ctx(request).store.read() as conn:
        row = conn.execute(
            select(
                assignments,
                incidents.c.category,
                incidents.c.lat,
                incidents.c.lon,
                incidents.c.playbook_snapshot,
                crews.c.name.label("crew_name"),
            )
            .join(incidents, incidents.c.id == assignments.c.incident_id)
            .join(crews, crews.c.id == assignments.c.crew_id)
            .where(assignments.c.id == assignment_id, assignments.c.crew_id == crew_id)
        ).first()
        if row is None:
            return _refuse(request, "assignment not found for this crew")
        first = first_report(conn, row.incident_id)
    action = playbook_from_snapshot(row.playbook_snapshot).dispatch_for(row.level, row.skill)
    checklist = "".join(f"<li>{html.escape(i)}</li>" for i in (action.checklist if action else ()))
    esc = html.escape
    where = esc(first.address or "") if first and first.address else ""
    if row.lat is not None:
        lat, lon = float(row.lat), float(row.lon)
        link = esc(map_link(lat, lon, f"任务{int(assignment_id)} {category_zh(row.category)}"))
        where += (
            f' <a id="map" href="{link}" target="_blank" rel="noopener noreferrer">地图 Map</a> '
            f'<span style="color:#666">({esc(f"{lat:.5f},{lon:.5f}")} WGS-84)</span>'
        )
    # The token passed the strict decoder (base64url and one dot only); it is escaped
    # all the same, so no later change to the decoder can put markup on this page.
    token = esc(request.match_info["token"])
    buttons = "".join(
        f'<form method="post" action="/c/{token}/{esc(name)}"><button>{esc(label)}</button></form>'
        for name, label in BUTTONS.items()
        if row.state in MOVES[name][0]
    )
    if row.state == AssignmentState.ASSIGNED:
        buttons += (
            f'<form method="post" action="/c/{token}/decline">'
            '<input name="reason" placeholder="拒绝原因 Reason" required maxlength="200">'
            '<button class="decline">拒绝 Decline</button></form>'
        )
    due = as_utc(row.ack_due_at)
    what = esc(category_zh(row.category))
    state = esc(status_label(row.state)["zh"])
    body = f"""<h1>任务 {int(assignment_id)}：{what}</h1>
<div class="card"><div>状态 State: <span class="state" id="state">{state}</span></div>
<div>地点 Where: {where or "见描述"}</div>
<div>描述: {esc(first.description if first else "")}</div>
<div>确认时限 Ack by: {due.astimezone(CITY_TZ).strftime("%H:%M") if due else "-"}</div>
<div>班组 Crew: {esc(row.crew_name)}</div></div>
<div class="card"><b>要点 Checklist</b><ol>{checklist}</ol></div>
{buttons}"""
    return web.Response(
        text=mobile_page(f"任务 {assignment_id}", body), content_type="text/html", charset="utf-8"
    )


async def crew_act(request: web.Request) -> web.StreamResponse:
    verified = _verified(request)
    if isinstance(verified, web.Response):
        return verified
    assignment_id, crew_id = verified
    try:
        action = CrewAction(request.match_info["action"])
    except ValueError:
        raise web.HTTPNotFound(reason="unknown action") from None
    try:
        form = await read_form(request)
    except Invalid as exc:
        return web.Response(status=exc.status, text=str(exc))
    reason = clean_text(str(form.get("reason", ""))).strip()[:200]
    if action is CrewAction.DECLINE and not reason:
        return web.Response(status=400, text="拒绝需要填写原因 A reason is required")
    # A refused move (too late, wrong order) changes nothing; the page shows the state.
    with contextlib.suppress(NotFound, TransitionRefused):
        await asyncio.to_thread(
            apply_crew_action,
            ctx(request).store,
            assignment_id,
            action,
            f"crew:{crew_id} via link",
            utcnow(),
            reason,
            crew_id,
        )
    raise web.HTTPSeeOther(f"/c/{request.match_info['token']}")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/c/{token}", crew_page)
    app.router.add_post("/c/{token}/{action}", crew_act)

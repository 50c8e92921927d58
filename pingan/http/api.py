"""The dispatcher and crew API under /api/ (bearer token required, see app.py)."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from urllib.parse import urlencode

from aiohttp import web
from pydantic import BaseModel, Field, StrictBool, StrictInt, StrictStr
from sqlalchemy import select

from alerts.history import PAGE_DEFAULT, PAGE_MAX, message_history
from alerts.pipeline import give_up
from pingan import queries
from pingan.actions import (
    NotAllowed,
    NotFound,
    apply_crew_action,
    confirm_incident,
    merge_incidents,
    reopen_incident,
    resolve_by_dispatcher,
    split_incident,
)
from pingan.clock import utcnow
from pingan.core.assignments import CrewAction, TransitionRefused
from pingan.http.context import actor_of, ctx, json_error, json_response, may_see_phones
from pingan.http.validation import (
    Invalid,
    check_when,
    is_id,
    model_of,
    parse_count,
    parse_id,
    parse_when,
    read_json,
)
from pingan.intake.accept import accept_warning
from pingan.intake.warnings import WarningInvalid, parse_signal
from pingan.kpis import compute as compute_kpis
from pingan.kpis import to_csv as kpis_csv
from pingan.phones import PhoneInvalid, e164
from pingan.privacy import mask_phone
from pingan.store import record_audit
from pingan.store.schema import crew_overrides, crews
from pingan.vocabulary import IncidentStatus

STATUSES = {s.value for s in IncidentStatus}
log = logging.getLogger("pingan.http.api")


def _int_id(request: web.Request, name: str) -> int:
    raw = request.match_info[name]
    if not is_id(raw):
        raise web.HTTPNotFound(reason=f"{name} {raw[:40]!r} not found")
    return int(raw)


# ---- request bodies, one model per route ------------------------------------------

Text = StrictStr
Id = StrictInt | StrictStr


class WarningBody(BaseModel):
    """POST /api/warnings: the CMA-style shape of pingan/warnings.py, types only (the
    values are checked by parse_signal)."""

    id: Id
    msg_type: Text = "Alert"
    event: Text
    level: Text
    districts: list[Text] | Text
    sent: Text | None = None
    expires: Text | None = None
    references: list[Text] = Field(default_factory=list)
    headline: Text = Field("", max_length=500)


class ReasonBody(BaseModel):
    reason: Text = ""


class CommandBody(BaseModel):
    merge: Id | None = None
    reports: list[Id] | None = Field(None, max_length=1000)
    reason: Text = ""


class OverrideBody(BaseModel):
    from_: Text = Field(alias="from")
    to: Text
    on_shift: StrictBool
    reason: Text = ""


async def list_incidents(request: web.Request) -> web.Response:
    status = request.query.get("status")
    if status and status not in STATUSES:
        return json_error(400, f"status: {status!r} is not one of {', '.join(sorted(STATUSES))}")
    with ctx(request).store.read() as conn:
        return json_response({"incidents": queries.list_incidents(conn, status)})


async def get_incident(request: web.Request) -> web.Response:
    incident_id = _int_id(request, "id")
    with ctx(request).store.read() as conn:
        found = queries.get_incident(conn, incident_id, may_see_phones(request))
    if found is None:
        return json_error(404, f"incident {incident_id} not found")
    return json_response(found)


def _crew_action(action: CrewAction):  # type: ignore[no-untyped-def]
    async def handler(request: web.Request) -> web.Response:
        assignment_id = _int_id(request, "id")
        store = ctx(request).store
        try:
            result = await asyncio.to_thread(
                apply_crew_action,
                store,
                assignment_id,
                action,
                f"{actor_of(request)} for the crew",
                utcnow(),
            )
        except NotFound as exc:
            return json_error(404, str(exc))
        except TransitionRefused as exc:
            return json_error(409, f"assignment {assignment_id}: {exc}")
        return json_response(
            {"id": result.assignment_id, "incident_id": result.incident_id, "state": result.state}
        )

    return handler


async def post_warning(request: web.Request) -> web.Response:
    """A dispatcher (or a relay) enters an official warning signal: the CMA-style JSON
    shape of pingan/intake/warnings.py. Re-sending the same message is harmless."""
    data = await read_json(request)
    body = model_of(WarningBody, data)
    for name in ("sent", "expires"):
        if getattr(body, name):
            parse_when(getattr(body, name), name)
    now = utcnow()
    try:
        signal = parse_signal({**data, "id": str(body.id)}, now)
    except WarningInvalid as exc:
        return json_error(400, str(exc))
    headline = body.headline
    created = await asyncio.to_thread(
        accept_warning, ctx(request).store, signal, headline, "api", now
    )
    return json_response(
        {
            "id": signal.id,
            "msg_type": signal.msg_type,
            "accepted": created,
            "note": "" if created else "already received; nothing changed",
        },
        status=202 if created else 200,
    )


async def list_warnings(request: web.Request) -> web.Response:
    with ctx(request).store.read() as conn:
        return json_response({"warnings": queries.warnings_in_force(conn, utcnow())})


async def list_playbooks(request: web.Request) -> web.Response:
    registry = ctx(request).playbooks
    with ctx(request).store.read() as conn:
        worker = queries.component(conn, "playbooks")
    return json_response(
        {
            "playbooks": [
                {
                    "id": p.id,
                    "version": p.version,
                    "name": p.name.model_dump(),
                    "owner": p.owner,
                    "levels": list(p.levels),
                    "triggers": [t.model_dump() for t in p.triggers],
                }
                for p in sorted(registry.index.playbooks.values(), key=lambda p: p.id)
            ],
            "status": "invalid" if registry.error else "ok",
            "error": registry.error,
            "worker": worker,
        }
    )


async def resolve_incident(request: web.Request) -> web.Response:
    incident_id = _int_id(request, "id")
    reason = model_of(ReasonBody, await read_json(request)).reason.strip()
    if not reason or len(reason) > 500:
        return json_error(400, "reason: required (why the incident is over), at most 500 chars")
    try:
        await asyncio.to_thread(
            resolve_by_dispatcher,
            ctx(request).store,
            incident_id,
            reason,
            actor_of(request),
            utcnow(),
        )
    except NotFound as exc:
        return json_error(404, str(exc))
    except NotAllowed as exc:
        return json_error(409, str(exc))
    with ctx(request).store.read() as conn:
        return json_response(queries.get_incident(conn, incident_id))


async def release_incident(request: web.Request) -> web.Response:
    from pingan.dispatch.staffing import release_incident as release

    incident_id = _int_id(request, "id")
    store, actor = ctx(request).store, actor_of(request)

    def run() -> bool:
        with store.transaction() as conn:
            return release(conn, incident_id, actor, utcnow())

    if not await asyncio.to_thread(run):
        return json_error(409, f"incident {incident_id} is not held")
    with store.read() as conn:
        return json_response(queries.get_incident(conn, incident_id))


def _phone(raw: str) -> str:
    """The `phone` query parameter in E.164. A '+' typed into a URL unencoded arrives as
    a space (+8613… becomes " 8613…"); it is read as the '+' it was."""
    if not raw.strip():
        raise Invalid("phone", "required: the number whose messages to show, e.g. +8613812345678")
    if raw[:1] == " " and raw.lstrip()[:1].isdigit():
        raw = "+" + raw.lstrip()
    try:
        return e164(raw)
    except PhoneInvalid as exc:
        raise Invalid("phone", str(exc).removeprefix("phone: ")) from None


async def messages(request: web.Request) -> web.Response:
    """GET /api/messages?phone=…&limit=…&before=…: every message sent or tried to one
    number, newest first, a page at a time (`next` is the following page)."""
    q = request.query
    phone = _phone(q.get("phone", ""))
    limit = parse_count(q["limit"], "limit", 1, PAGE_MAX) if "limit" in q else PAGE_DEFAULT
    before = parse_id(q["before"], "before") if "before" in q else None
    with ctx(request).store.read() as conn:
        page = message_history(conn, phone, limit, before)
    log.info(
        "message history by=%s phone=%s shown=%d",
        actor_of(request),
        mask_phone(phone),
        len(page.messages),
    )
    following = (
        "/api/messages?" + urlencode({"phone": phone, "limit": limit, "before": page.next_before})
        if page.next_before is not None
        else None
    )
    return json_response(
        {
            "phone": phone,
            "messages": page.messages,
            "next_before": page.next_before,
            "next": following,
        }
    )


async def give_up_message(request: web.Request) -> web.Response:
    """POST /api/messages/{id}/give-up: a dispatcher ends a message still pending (the
    provider has not taken it and is still being retried): it is failed, never sent."""
    send_id = parse_id(request.match_info["id"], "id")
    who = actor_of(request)
    now = utcnow()
    with ctx(request).store.transaction() as conn:
        if not give_up(conn, send_id, who, now):
            return json_error(409, f"message {send_id} is not pending (or does not exist)")
        record_audit(conn, now, who, "message.given_up", "send", send_id, {})
    log.info("message given up id=%s by=%s", send_id, who)
    return json_response({"id": send_id, "status": "failed"})


async def crew_board(request: web.Request) -> web.Response:
    with ctx(request).store.read() as conn:
        return json_response({"crews": queries.crew_board(conn, utcnow())})


async def add_crew_override(request: web.Request) -> web.Response:
    crew_id = request.match_info["id"]
    body = model_of(OverrideBody, await read_json(request))
    start, end = parse_when(body.from_, "from"), parse_when(body.to, "to")
    if end <= start:
        raise Invalid("from/to", "from must be before to")
    on_shift = body.on_shift
    data = {"reason": body.reason}
    now = utcnow()
    with ctx(request).store.transaction() as conn:
        if conn.execute(select(crews.c.id).where(crews.c.id == crew_id)).first() is None:
            return json_error(404, f"crew {crew_id!r} not found")
        conn.execute(
            crew_overrides.insert().values(
                crew_id=crew_id,
                starts_at=start,
                ends_at=end,
                on_shift=int(on_shift),
                reason=str(data.get("reason", ""))[:200],
                created_by="api",
                created_at=now,
            )
        )
        record_audit(
            conn,
            now,
            "api",
            "crew.shift_override",
            "crew",
            crew_id,
            {"from": start.isoformat(), "to": end.isoformat(), "on_shift": on_shift},
        )
    return json_response({"crew": crew_id, "status": "recorded"}, status=201)


async def kpis(request: web.Request) -> web.Response:
    q = request.query
    end = parse_when(q["to"], "to") if q.get("to") else utcnow()
    start = (
        parse_when(q["from"], "from")
        if q.get("from")
        else check_when(end - timedelta(days=30), "to")
    )
    try:
        group = q.get("group", "category")
        with ctx(request).store.read() as conn:
            table = compute_kpis(queries.assignment_facts(conn, start, end), group)
    except ValueError as exc:
        return json_error(400, str(exc))
    if request.path.endswith(".csv"):
        return web.Response(
            text=kpis_csv(table),
            content_type="text/csv",
            charset="utf-8",
            headers={"Content-Disposition": 'attachment; filename="kpis.csv"'},
        )
    return json_response(
        {"from": start.isoformat(), "to": end.isoformat(), "group": group, "rows": table}
    )


def _incident_command(name: str):  # type: ignore[no-untyped-def]
    """confirm / merge / split / reopen: the body's fields go to the command."""

    async def handler(request: web.Request) -> web.Response:
        incident_id = _int_id(request, "id")
        body = model_of(CommandBody, await read_json(request))
        try:
            store, actor, now = ctx(request).store, actor_of(request), utcnow()
            if name == "confirm":
                await asyncio.to_thread(confirm_incident, store, incident_id, actor, now)
            elif name == "merge":
                if body.merge is None:
                    raise Invalid("merge", "required (the incident to merge into this one)")
                other = parse_id(body.merge, "merge")
                await asyncio.to_thread(merge_incidents, store, incident_id, other, actor, now)
            elif name == "split":
                if not body.reports:
                    raise Invalid("reports", "required (report ids to split off)")
                ids = [parse_id(i, "reports") for i in body.reports]
                new = await asyncio.to_thread(split_incident, store, incident_id, ids, actor, now)
                return json_response({"incident": incident_id, "new_incident": new}, status=201)
            else:
                reason = body.reason.strip()
                if not reason:
                    raise Invalid("reason", "required")
                await asyncio.to_thread(reopen_incident, store, incident_id, reason, actor, now)
        except Invalid:
            raise
        except ValueError as exc:
            return json_error(400, f"body: {exc}")
        except NotFound as exc:
            return json_error(404, str(exc))
        except NotAllowed as exc:
            return json_error(409, str(exc))
        with ctx(request).store.read() as conn:
            return json_response(queries.get_incident(conn, incident_id))

    return handler


def add_routes(app: web.Application) -> None:
    for command in ("confirm", "merge", "split", "reopen"):
        app.router.add_post(f"/api/incidents/{{id}}/{command}", _incident_command(command))
    app.router.add_post("/api/incidents/{id}/release", release_incident)
    app.router.add_get("/api/crews", crew_board)
    app.router.add_get("/api/messages", messages)
    app.router.add_post("/api/messages/{id}/give-up", give_up_message)
    app.router.add_post("/api/crews/{id}/overrides", add_crew_override)
    app.router.add_get("/api/kpis", kpis)
    app.router.add_get("/api/kpis.csv", kpis)
    app.router.add_post("/api/incidents/{id}/resolve", resolve_incident)
    app.router.add_post("/api/warnings", post_warning)
    app.router.add_get("/api/warnings", list_warnings)
    app.router.add_get("/api/playbooks", list_playbooks)
    app.router.add_get("/api/incidents", list_incidents)
    app.router.add_get("/api/incidents/{id}", get_incident)
    app.router.add_post("/api/assignments/{id}/ack", _crew_action(CrewAction.ACK))
    app.router.add_post("/api/assignments/{id}/done", _crew_action(CrewAction.DONE))

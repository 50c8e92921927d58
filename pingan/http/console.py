"""The dispatcher console: one page (pingan/console/ holds its HTML, JS, CSS and the bundled
district map; nothing from a CDN, no build step), the JSON it reads, live updates by
server-sent events, and the shift handover page."""

from __future__ import annotations

import asyncio
import functools
import html
import json
from datetime import timedelta
from importlib import resources
from typing import Any, get_args

from aiohttp import web
from sqlalchemy import func, select

from pingan import queries
from pingan.city import city_geojson, load_city
from pingan.clock import utcnow
from pingan.crews import CITY_TZ
from pingan.dispatch import commands
from pingan.http.context import actor_of, ctx, json_error, json_response
from pingan.http.validation import is_id
from pingan.intake.location import load_gazetteer
from pingan.labels import (
    actor_label,
    assignment_labels,
    crew_label,
    incident_labels,
    segment_label,
    trail_note,
)
from pingan.store import as_utc
from pingan.store.schema import (
    assignments,
    audit,
    citizen_warnings,
    components,
    crews,
    incidents,
    reports,
)
from pingan.vocabulary import (
    ACTORS,
    AUDIT_ACTIONS,
    CATEGORIES,
    CHANNELS,
    COMPONENT_STATES,
    COMPONENTS,
    CREW_REASON_RULES,
    ERRORS,
    LEVEL_ORDER,
    MESSAGE_KINDS,
    MESSAGE_STATUSES,
    METRICS,
    ROLES,
    SKILLS,
    STATUSES,
    WARNING_CHANNELS,
    WARNING_EVENTS,
    WARNING_STATUSES,
    AssignmentState,
    IncidentStatus,
    WarningLevel,
    audit_label,
    category_label,
    event_label,
    level_label,
    status_label,
    words,
)

# Package data (importlib.resources), so an installed package (the image) serves it too.
CONSOLE = resources.files("pingan") / "console"
# Served name → (file under console/, type). Leaflet is vendored (console/vendor/,
# BSD-2-Clause): the duty room may be offline, so nothing comes from a CDN.
STATIC = {
    "app.js": ("app.js", "application/javascript"),
    "map.js": ("map.js", "application/javascript"),
    "style.css": ("style.css", "text/css"),
    "leaflet.js": ("vendor/leaflet/leaflet.js", "application/javascript"),
    "leaflet.css": ("vendor/leaflet/leaflet.css", "text/css"),
}
STREAM_POLL_S = 1.0


async def page(request: web.Request) -> web.Response:
    text = (CONSOLE / "index.html").read_text(encoding="utf-8")
    text = text.replace("{{csrf}}", html.escape(str(request.get("csrf", ""))))
    text = text.replace("{{user}}", html.escape(actor_of(request)))
    text = text.replace("{{role}}", html.escape(str(request.get("role", ""))))
    return web.Response(text=text, content_type="text/html", charset="utf-8")


async def static(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in STATIC:
        raise web.HTTPNotFound(reason="no such file")
    path, content_type = STATIC[name]
    return web.Response(body=(CONSOLE / path).read_bytes(), content_type=content_type)


@functools.cache
def _districts_body() -> bytes:
    return json.dumps(city_geojson(load_city()), ensure_ascii=False).encode()


async def districts(request: web.Request) -> web.Response:
    """The district outlines (real, from pingan/data/districts.geojson) and the
    functional zones' centres, as GeoJSON for the map."""
    return web.Response(body=_districts_body(), content_type="application/geo+json")


def _choices(table: dict[str, tuple[str, str]], codes: Any = None) -> list[dict[str, str]]:
    return [{"code": c, "zh": table[c][0], "en": table[c][1]} for c in (codes or table)]


@functools.cache
def _vocabulary() -> dict[str, Any]:
    city = load_city()
    return {
        "languages": [{"code": "zh", "name": "中文"}, {"code": "en", "name": "English"}],
        "events": [{"code": e, **event_label(e)} for e in WARNING_EVENTS],
        "levels": [
            {"code": lv, **level_label(lv), "signal": lv in get_args(WarningLevel)}
            for lv in LEVEL_ORDER
        ],
        "districts": [
            {
                "code": d.code,
                "zh": d.zh,
                "en": d.en,
                "kind": "district" if d.outline is not None else "zone",
            }
            for d in city.districts.values()
        ],
        "channels": _choices(CHANNELS, WARNING_CHANNELS),
        "categories": {c: category_label(c) for c in (*CATEGORIES, *WARNING_EVENTS, *METRICS)},
        "statuses": words(STATUSES),
        "warning_statuses": words(WARNING_STATUSES),
        "message_channels": words(CHANNELS),
        "message_kinds": words(MESSAGE_KINDS),
        "message_statuses": words(MESSAGE_STATUSES),
        "trail": words(AUDIT_ACTIONS),
        "actors": words(ACTORS),
        "reasons": words(CREW_REASON_RULES),
        "skills": words(SKILLS),
        "roles": words(ROLES),
        "errors": words(ERRORS),
        "components": words(COMPONENTS),
        "component_states": words(COMPONENT_STATES),
    }


async def vocabulary(request: web.Request) -> web.Response:
    """Every word the console shows for a code, in Chinese and English, and the choices
    its forms offer (services a playbook handles, warning events, levels, districts,
    channels), so the page hard-codes none of them."""
    offered = ctx(request).playbooks.index.report_categories()
    services = [c for c in CATEGORIES if c in offered]
    return json_response({**_vocabulary(), "services": _choices(CATEGORIES, services)})


async def warning_areas(request: web.Request) -> web.Response:
    with ctx(request).store.read() as conn:
        return json_response({"warnings": queries.warning_areas(conn, utcnow())})


def gazetteer_names(ids: set[str | None]) -> dict[str, str]:
    """A segment the roster does not name, by the gazetteer's places on it (解放路、交通路)."""
    places: dict[str, list[str]] = {}
    for place in load_gazetteer():
        if place.segment in ids and place.name not in places.get(place.segment, []):
            places.setdefault(place.segment, []).append(place.name)
    return {segment: "、".join(names) for segment, names in places.items()}


def board(conn: Any, now: Any) -> dict[str, Any]:
    recent = now - timedelta(hours=2)
    rows = conn.execute(
        select(incidents)
        .where(
            (incidents.c.status != IncidentStatus.RESOLVED) | (incidents.c.resolved_at >= recent)
        )
        .order_by(incidents.c.id.desc())
        .limit(300)
    ).all()
    ids = [r.id for r in rows]
    per_incident = (
        {
            r.incident_id: r
            for r in conn.execute(
                select(
                    reports.c.incident_id,
                    func.count().label("n"),
                    func.max(reports.c.district).label("district"),
                    func.max(reports.c.segment).label("segment"),
                )
                .where(reports.c.incident_id.in_(ids))
                .group_by(reports.c.incident_id)
            )
        }
        if ids
        else {}
    )
    crews_of: dict[int, list[dict[str, Any]]] = {}
    tasks = (
        conn.execute(
            select(assignments, crews.c.name, crews.c.name_en)
            .join(crews, crews.c.id == assignments.c.crew_id)
            .where(assignments.c.incident_id.in_(ids))
            .order_by(assignments.c.id)
        ).all()
        if ids
        else []
    )
    segments = {r.id: getattr(per_incident.get(r.id), "segment", None) for r in rows}
    names = queries.segment_names(
        conn, [*segments.values(), *((a.reason or {}).get("segment") for a in tasks)]
    )
    names = gazetteer_names(set(segments.values()) - set(names)) | names
    for a in tasks:
        due = as_utc(a.ack_due_at)
        crews_of.setdefault(a.incident_id, []).append(
            {
                "id": a.id,
                "crew": a.crew_id,
                "state": a.state,
                "why": a.why,
                "labels": assignment_labels(
                    crew_label(a.name, a.name_en), a.state, a.reason, a.why, names
                ),
                "ack_due_at": due.isoformat() if due else None,
                "overdue": bool(due and a.state == AssignmentState.ASSIGNED and due < now),
            }
        )
    return {
        "now": now.isoformat(),
        "incidents": [
            {
                "id": r.id,
                "status": r.status,
                "category": r.category,
                "level": r.level,
                "playbook": f"{r.playbook_id} v{r.playbook_version}",
                "district": r.district or getattr(per_incident.get(r.id), "district", None),
                "segment": getattr(per_incident.get(r.id), "segment", None),
                "lat": r.lat,
                "lon": r.lon,
                "reports": getattr(per_incident.get(r.id), "n", 0),
                "unstaffed": bool(r.unstaffed),
                "held": bool(r.held),
                "assignments": crews_of.get(r.id, []),
                "labels": incident_labels(
                    r.category,
                    r.district or getattr(per_incident.get(r.id), "district", None),
                    r.level,
                )
                | {"segment": segment_label(segments[r.id], names)},
            }
            for r in rows
        ],
    }


async def board_json(request: web.Request) -> web.Response:
    with ctx(request).store.read() as conn:
        return json_response(board(conn, utcnow()))


async def health(request: web.Request) -> web.Response:
    c = ctx(request)
    with c.store.read() as conn:
        parts = {
            r.name: {
                "state": r.state,
                "detail": r.detail,
                "updated_at": as_utc(r.updated_at).isoformat(),
            }  # type: ignore[union-attr]
            for r in conn.execute(select(components))
        }
        waiting = queries.backlog(conn, utcnow())
    parts["playbooks(http)"] = {
        "state": "invalid" if c.playbooks.error else "ok",
        "detail": c.playbooks.error or c.playbooks.versions(),
        "updated_at": utcnow().isoformat(),
    }
    return json_response({"components": parts, "backlog": waiting})


async def me(request: web.Request) -> web.Response:
    return json_response({"user": actor_of(request), "role": request.get("role")})


async def stream(request: web.Request) -> web.StreamResponse:
    """Server-sent events: 'change' whenever the audit trail grows (every state change
    writes one), so the page refetches what it shows without reloading."""
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    store = ctx(request).store
    last = None
    beat = 0
    try:
        while True:
            with store.read() as conn:
                newest = (
                    conn.execute(select(func.max(audit.c.id))).scalar_one(),
                    conn.execute(select(func.max(components.c.updated_at))).scalar_one(),
                )
            if newest != last:
                last = newest
                await response.write(f"event: change\ndata: {newest[0] or 0}\n\n".encode())
            beat += 1
            if beat % 15 == 0:
                await response.write(b": keep-alive\n\n")
            await asyncio.sleep(STREAM_POLL_S)
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    return response


async def reassign(request: web.Request) -> web.Response:
    """A dispatcher takes a task off a crew and asks the next one (audited)."""
    raw = request.match_info["id"]
    if not is_id(raw):
        return json_error(404, f"assignment {raw[:40]!r} not found")
    c = ctx(request)
    incident_id = await asyncio.to_thread(
        commands.reassign, c.store, int(raw), actor_of(request), utcnow()
    )
    if incident_id is None:
        return json_error(409, f"assignment {raw} cannot be reassigned now")
    with c.store.read() as conn:
        return json_response(queries.get_incident(conn, incident_id))


async def dispatch_now(request: web.Request) -> web.Response:
    """Dispatch (again) what the incident's level asks for, e.g. once crews are free."""
    raw = request.match_info["id"]
    if not is_id(raw):
        return json_error(404, f"incident {raw[:40]!r} not found")
    c = ctx(request)
    if not await asyncio.to_thread(
        commands.dispatch_now, c.store, int(raw), actor_of(request), utcnow()
    ):
        return json_error(404, f"incident {raw} not found")
    with c.store.read() as conn:
        return json_response(queries.get_incident(conn, int(raw)))


async def audit_trail(request: web.Request) -> web.Response:
    """An incident's trail: its own entries and its tasks', oldest first, each with
    `labels` in both languages (what happened, who did it, on which task, and what a
    person wrote or what changed)."""
    raw = request.match_info["id"]
    if not is_id(raw):
        return json_error(404, "not found")
    with ctx(request).store.read() as conn:
        names = {
            r.id: crew_label(r.name, r.name_en)
            for r in conn.execute(select(crews.c.id, crews.c.name, crews.c.name_en))
        }
        tasks = {
            str(r.id): r.crew_id
            for r in conn.execute(
                select(assignments.c.id, assignments.c.crew_id).where(
                    assignments.c.incident_id == int(raw)
                )
            )
        }
        rows = conn.execute(
            select(audit)
            .where(
                ((audit.c.entity == "incident") & (audit.c.entity_id == raw))
                | ((audit.c.entity == "assignment") & audit.c.entity_id.in_(list(tasks)))
            )
            .order_by(audit.c.id)
        ).all()

    def task(entity: str, entity_id: str) -> dict[str, str] | None:
        if entity != "assignment":
            return None
        crew = names.get(tasks.get(entity_id, ""), {"zh": "", "en": ""})
        return {
            "zh": f"任务{entity_id}·{crew['zh']}",
            "en": f"task {entity_id} · {crew['en']}",
        }

    return json_response(
        {
            "audit": [
                {
                    "at": as_utc(r.at).isoformat(),
                    "actor": r.actor,  # type: ignore[union-attr]
                    "action": r.action,
                    "entity": f"{r.entity} {r.entity_id}",
                    "detail": r.detail,
                    "labels": {
                        "action": audit_label(r.action),
                        "actor": actor_label(r.actor, names),
                        "task": task(r.entity, r.entity_id),
                        "note": trail_note(r.action, r.detail or {}),
                    },
                }
                for r in rows
            ]
        }
    )


# The handover page's own words; everything else on it comes from the labels.
HANDOVER_WORDS: dict[str, tuple[str, str]] = {
    "title": ("交接班", "Shift handover"),
    "open": ("未结事件", "Open incidents"),
    "category": ("类别", "Category"),
    "level": ("级别", "Level"),
    "where": ("区域/路段", "District/segment"),
    "status": ("状态", "Status"),
    "reports": ("报告", "Reports"),
    "pending": ("待确认", "Pending acknowledgements"),
    "approvals": ("待审批预警", "Pending approvals"),
    "in_force": ("生效预警", "Warnings in force"),
    "task": ("任务{id}：{crew}（事件{incident}）", "task {id}: {crew} (incident {incident})"),
    "overdue": ("，已超时", ", overdue"),
    "draft": ("#{id} {signal}：{n}人，起草", "#{id} {signal}: {n} recipients, drafted by"),
    "warning": ("{signal}：", "{signal}: "),
    "signal": ("{event}{level}", "{event} {level}"),
}


async def handover(request: web.Request) -> web.Response:
    """The shift handover on one printable page, in one language (?lang=zh, the
    default, or en): open incidents, pending acks, pending approvals, warnings in
    force. ?format=json exports the same data."""
    now = utcnow()
    with ctx(request).store.read() as conn:
        data = board(conn, now)
        in_force = queries.warnings_in_force(conn, now)
        drafts = conn.execute(
            select(citizen_warnings).where(citizen_warnings.c.status == "draft")
        ).all()
    open_rows = [i for i in data["incidents"] if i["status"] != "resolved"]
    pending = [(i, a) for i in open_rows for a in i["assignments"] if a["state"] == "assigned"]
    if request.query.get("format") == "json":
        return json_response(
            {
                "open": open_rows,
                "pending_acks": len(pending),
                "pending_approvals": len(drafts),
                "warnings": in_force,
            }
        )
    lang = "en" if request.query.get("lang") == "en" else "zh"
    n = 0 if lang == "zh" else 1
    sep = "、" if lang == "zh" else ", "

    def w(key: str, **values: Any) -> str:
        return html.escape(HANDOVER_WORDS[key][n].format(**values))

    def said(label: Any) -> str:
        return html.escape((label or {}).get(lang, ""))

    def as_written(value: str) -> str:
        return f'<span translate="no">{html.escape(value)}</span>'

    def signal(event: str, level: str) -> str:
        return HANDOVER_WORDS["signal"][n].format(
            event=event_label(event)[lang], level=level_label(level)[lang]
        )

    def districts(codes: Any) -> str:
        city = load_city().districts
        return sep.join(
            html.escape(getattr(city[c], lang)) if c in city else as_written(c) for c in codes
        )

    body = [
        f"<h1>{w('title')}</h1><p>{now.astimezone(CITY_TZ):%Y-%m-%d %H:%M} · "
        f"{as_written(actor_of(request))}</p>",
        f"<h2>{w('open')} ({len(open_rows)})</h2><table><tr><th>#</th><th>{w('category')}</th>"
        f"<th>{w('level')}</th><th>{w('where')}</th><th>{w('status')}</th>"
        f"<th>{w('reports')}</th></tr>",
    ]
    body += [
        f"<tr><td>{i['id']}</td><td>{said(i['labels']['category'])}</td>"
        f"<td>{said(i['labels']['level'])}</td>"
        f"<td>{said(i['labels']['district'])} "
        f"{said(i['labels']['segment']) or as_written(i['segment'] or '')}</td>"
        f"<td>{said(status_label(i['status']))}</td><td>{i['reports']}</td></tr>"
        for i in open_rows
    ]
    body.append(f"</table><h2>{w('pending')} ({len(pending)})</h2><ul>")
    body += [
        f"<li>{w('task', id=a['id'], crew=a['labels']['crew'][lang], incident=i['id'])}"
        f"{w('overdue') if a['overdue'] else ''}</li>"
        for i, a in pending
    ]
    body.append(f"</ul><h2>{w('approvals')} ({len(drafts)})</h2><ul>")
    body += [
        f"<li>{w('draft', id=d.id, signal=signal(d.event, d.level), n=d.recipients)} "
        f"{as_written(d.drafted_by)}</li>"
        for d in drafts
    ]
    body.append(f"</ul><h2>{w('in_force')} ({len(in_force)})</h2><ul>")
    body += [
        f"<li>{as_written(str(x['id']))} "
        f"{w('warning', signal=signal(x['event'], x['level']))}"
        f"{districts(x['districts'])}</li>"
        for x in in_force
    ]
    body.append("</ul>")
    text = (
        f"<!doctype html><html lang='{'zh-CN' if lang == 'zh' else 'en'}'><head>"
        f"<meta charset='utf-8'><title>{w('title')}</title>"
        "<link rel='stylesheet' href='/console/static/style.css'></head>"
        f"<body class='handover'>{''.join(body)}</body></html>"
    )
    return web.Response(text=text, content_type="text/html", charset="utf-8")


async def to_console(request: web.Request) -> web.Response:
    raise web.HTTPFound("/console/")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/console", to_console)
    app.router.add_get("/console/", page)
    app.router.add_get("/console/static/{name}", static)
    app.router.add_get("/console/handover", handover)
    app.router.add_get("/api/board", board_json)
    app.router.add_get("/api/districts", districts)
    app.router.add_get("/api/warning-areas", warning_areas)
    app.router.add_get("/api/health", health)
    app.router.add_get("/api/me", me)
    app.router.add_get("/api/vocabulary", vocabulary)
    app.router.add_get("/api/stream", stream)
    app.router.add_get("/api/incidents/{id}/audit", audit_trail)
    app.router.add_post("/api/assignments/{id}/reassign", reassign)
    app.router.add_post("/api/incidents/{id}/dispatch", dispatch_now)

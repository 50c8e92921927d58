"""Open311 GeoReport v2 under /open311/v2/, in JSON and XML as the standard specifies:
services, service definitions, requests (create, search, read). Errors use the
standard's list of {code, description} (<errors><error> in XML). The OpenAPI
description is served at /open311/v2/openapi.yaml."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from importlib import resources
from typing import Any
from xml.etree.ElementTree import Element, SubElement, tostring

from aiohttp import web
from sqlalchemy import select

from pingan.clock import utcnow
from pingan.http.context import ctx, json_response, token_ok
from pingan.http.ratelimit import RateLimited
from pingan.http.validation import (
    Invalid,
    clean_fields,
    clean_tree,
    is_id,
    parse_ids,
    parse_when,
    read_form,
    read_json,
)
from pingan.intake.reports import ReportInvalid, validate_report
from pingan.intake.services import CATALOGUE, Service
from pingan.phones import PhoneInvalid, e164
from pingan.privacy import mask_personal, mask_phone
from pingan.queries import ReportSearch, find_reports
from pingan.store import as_utc
from pingan.store.schema import incidents, reports
from pingan.vocabulary import IncidentStatus
from playbooks.snapshot import playbook_from_snapshot

log = logging.getLogger("pingan.open311")
PREFIX = "/open311/v2"
AGENCY = "漯河市城市管理局 Luohe Urban Management Bureau"
FORMATS = ("json", "xml")
MAX_RESULTS = 1000
# Package data, so the installed package (the image) describes itself too.
OPENAPI = resources.files("pingan") / "data" / "open311-openapi.yaml"


# ---- output ---------------------------------------------------------------------


def _xml(root: str, item: str, rows: Sequence[Mapping[str, Any]]) -> bytes:
    top = Element(root)
    for row in rows:
        _fill(SubElement(top, item), row)
    return _xml_bytes(top)


def _xml_bytes(top: Element) -> bytes:
    clean_tree(top)  # a stored \x01 would make the whole answer malformed
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + tostring(top, encoding="unicode").encode()


def _fill(parent: Element, row: Mapping[str, Any]) -> None:
    for key, value in row.items():
        child = SubElement(parent, key)
        if isinstance(value, Mapping):
            _fill(child, value)
        elif isinstance(value, list):
            singular = {"attributes": "attribute", "values": "value"}.get(key, "item")
            for item in value:
                _fill(SubElement(child, singular), item)
        elif isinstance(value, bool):
            child.text = "true" if value else "false"
        elif value is not None:
            child.text = str(value)


def respond(
    fmt: str, root: str, item: str, rows: list[dict[str, Any]], status: int = 200
) -> web.Response:
    if fmt == "xml":
        return web.Response(
            body=_xml(root, item, rows), status=status, content_type="text/xml", charset="utf-8"
        )
    return json_response(rows, status=status)


def open311_error(
    status: int, description: str, fmt: str = "json", headers: Mapping[str, str] | None = None
) -> web.Response:
    reply = respond(fmt, "errors", "error", [{"code": status, "description": description}], status)
    reply.headers.update(headers or {})
    return reply


def _format(request: web.Request) -> str | None:
    fmt = request.match_info.get("fmt", "json")
    return fmt if fmt in FORMATS else None


# ---- services -------------------------------------------------------------------


def _offered(request: web.Request) -> list[Service]:
    codes = ctx(request).playbooks.index.report_categories()
    return [CATALOGUE[c] for c in codes if c in CATALOGUE]


def _service_json(service: Service) -> dict[str, Any]:
    return {
        "service_code": service.code,
        "service_name": service.name,
        "description": service.description,
        "metadata": bool(service.attributes),
        "type": "realtime",
        "keywords": service.keywords,
        "group": service.group,
    }


async def get_services(request: web.Request) -> web.Response:
    fmt = _format(request)
    if fmt is None:
        return open311_error(404, "format: use .json or .xml")
    return respond(fmt, "services", "service", [_service_json(s) for s in _offered(request)])


async def get_service_definition(request: web.Request) -> web.Response:
    fmt = _format(request)
    if fmt is None:
        return open311_error(404, "format: use .json or .xml")
    code = request.match_info["code"]
    service = next((s for s in _offered(request) if s.code == code), None)
    if service is None:
        return open311_error(404, f"service_code {code!r} not found", fmt)
    definition = {
        "service_code": service.code,
        "attributes": [
            {
                "variable": True,
                "code": a.code,
                "datatype": a.datatype,
                "required": a.required,
                "datatype_description": "",
                "order": a.order,
                "description": a.description,
                "values": [{"key": v.key, "name": v.name} for v in a.values],
            }
            for a in service.attributes
        ],
    }
    if fmt == "xml":
        top = Element("service_definition")
        _fill(top, definition)
        return web.Response(body=_xml_bytes(top), content_type="text/xml", charset="utf-8")
    return json_response(definition)


# ---- requests -------------------------------------------------------------------


async def _fields(request: web.Request) -> dict[str, str]:
    """Form-encoded as the standard specifies, or a JSON object; control characters
    removed."""
    try:
        if request.content_type == "application/json":
            data = await read_json(request)
            if not isinstance(data, dict):
                raise ReportInvalid("body: expected a JSON object of request fields")
            out: dict[str, str] = {}
            for key, value in data.items():
                if key == "attribute" and isinstance(value, dict):
                    out.update(
                        {
                            f"attribute[{k}]": str(v)
                            for k, v in value.items()
                            if not isinstance(v, dict | list)
                        }
                    )
                elif not isinstance(value, dict | list):
                    out[str(key)] = "" if value is None else str(value)
            return clean_fields(out)
        form = await read_form(request)
    except web.HTTPRequestEntityTooLarge:
        raise ReportInvalid("body: larger than 64 KB", code=413) from None
    except Invalid as exc:
        raise ReportInvalid(str(exc), code=exc.status) from None
    return clean_fields({k: v for k, v in form.items() if isinstance(v, str)})


async def post_request(request: web.Request) -> web.Response:
    c = ctx(request)
    fmt = _format(request) or "json"
    try:
        fields = await _fields(request)
    except ReportInvalid as exc:
        return open311_error(exc.code, exc.description, fmt)
    api_key = fields.pop("api_key", "")
    if not api_key:
        return open311_error(403, "api_key: required", fmt)
    trusted = token_ok(api_key, c.settings.open311_trusted_keys)
    if not trusted and not token_ok(api_key, c.open311_keys):
        return open311_error(403, "api_key: not valid", fmt)
    if fields.get("phone", "").strip():
        try:
            fields["phone"] = e164(fields["phone"])
        except PhoneInvalid as exc:
            return open311_error(400, str(exc), fmt)
    try:
        if not trusted:  # one integration carries a whole city's callers
            # Per key and client address: one client cannot use up a shared key.
            c.limits.check("key", f"{api_key}@{request.remote}")
        if fields.get("phone"):
            c.limits.check("caller", fields["phone"])
    except RateLimited as exc:
        return open311_error(429, str(exc), fmt, {"Retry-After": str(exc.retry_after_s)})
    try:
        draft = validate_report(fields, c.playbooks.index.report_categories())
    except ReportInvalid as exc:
        return open311_error(exc.code, exc.description, fmt)
    accepted = await c.intake.accept(draft, "open311", f"open311:{api_key[:6]}", utcnow())
    log.info(
        "report accepted id=%s service_code=%s phone=%s duplicate=%s review=%s",
        accepted.report_id,
        draft.service_code,
        mask_phone(draft.contact["phone"]) if "phone" in draft.contact else "-",
        accepted.duplicate,
        accepted.review_reason or "-",
    )
    notice = "已受理，我们会尽快处理。Received; a crew will be sent."
    if accepted.duplicate:
        notice = "您刚才已经提交过同样的报告，编号不变。You already sent this report."
    elif accepted.review_reason:
        notice = "已受理，地址待工作人员核实。Received; staff will confirm the location."
    return respond(
        fmt,
        "service_requests",
        "request",
        [
            {
                "service_request_id": str(accepted.report_id),
                "service_notice": notice,
                "account_id": None,
            }
        ],
    )


def expected_datetime(incident: Any) -> datetime | None:
    """When the citizen may expect it done: the playbook's arrival target (or its
    acknowledgement deadline plus an hour) from when the incident opened."""
    if incident is None or incident.status == "resolved":
        return None
    playbook = playbook_from_snapshot(incident.playbook_snapshot)
    actions = playbook.actions_at(incident.level).dispatch
    if not actions:
        return None
    minutes = max((a.arrive_within_min or a.ack_within_min + 60) for a in actions)
    return as_utc(incident.opened_at) + timedelta(minutes=minutes)  # type: ignore[operator]


def _status_notes(report: Any, incident: Any) -> str:
    if report.review_reason and incident is None:
        return "待核实 Waiting for a dispatcher to confirm"
    if incident is None:
        return "已受理 Received"
    return {
        "open": "已立案，正在安排班组 Incident open, arranging a crew",
        "dispatched": "已派单 A crew has been sent",
        "in_progress": "班组处理中 The crew is on it",
        "resolved": "已处理完毕 Done",
    }.get(incident.status, incident.status)


def _request_view(report: Any, incident: Any, full: bool = False) -> dict[str, Any]:
    """One request as GeoReport v2 shows it. Anonymous readers get the description and
    address with phone numbers, ID numbers and house numbers masked (`full` for
    dispatchers and API clients)."""
    shown = (lambda text: text) if full else mask_personal
    # The same rule as pingan.queries.ReportSearch applies in SQL.
    resolved = incident is not None and incident.status == IncidentStatus.RESOLVED
    status = "closed" if resolved else "open"
    updated = incident.updated_at if incident is not None else report.received_at
    expected = expected_datetime(incident)
    service = CATALOGUE.get(report.service_code)
    return {
        "service_request_id": str(report.id),
        "status": status,
        "status_notes": _status_notes(report, incident),
        "service_name": service.name if service else report.service_code,
        "service_code": report.service_code,
        "description": shown(report.description or ""),
        "agency_responsible": AGENCY,
        "service_notice": "",
        "requested_datetime": as_utc(report.received_at).isoformat(),  # type: ignore[union-attr]
        "updated_datetime": as_utc(updated).isoformat(),  # type: ignore[union-attr]
        "expected_datetime": expected.isoformat() if expected else "",
        "address": shown(report.address or ""),
        "address_id": "",
        "zipcode": "",
        "lat": report.lat,
        "long": report.lon,
        "media_url": report.media_url or "",
    }


def _load(conn: Any, rows: Sequence[Any], full: bool = False) -> list[dict[str, Any]]:
    ids = {r.incident_id for r in rows if r.incident_id is not None}
    found = (
        {i.id: i for i in conn.execute(select(incidents).where(incidents.c.id.in_(ids)))}
        if ids
        else {}
    )
    return [_request_view(r, found.get(r.incident_id), full) for r in rows]


def _private(reply: web.Response) -> web.Response:
    """The same URL answers masked or in full depending on who asks: caches must not
    hand a dispatcher's full answer to the public."""
    reply.headers["Vary"] = "Authorization, Cookie"
    return reply


def sees_personal_data(request: web.Request) -> bool:
    """A dispatcher logged in (session) or a caller with an /api/ token reads reports
    in full; everyone else reads them masked."""
    from pingan.http.auth import current_session
    from pingan.users import role_at_least

    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token_ok(token.strip(), ctx(request).api_tokens)
    session = current_session(request) if request.cookies else None
    return session is not None and role_at_least(session[1], "dispatcher")


def _date(raw: str, name: str) -> datetime:
    try:
        return parse_when(raw, name, assume_utc=True)
    except Invalid as exc:
        raise ReportInvalid(f"{exc} (a w3 datetime such as 2026-01-20T00:00:00Z)") from None


def _listed(raw: str) -> list[str]:
    return [part.strip() for part in raw.split(",") if part.strip()]


def parse_search(query: Mapping[str, str], now: datetime) -> ReportSearch:
    """GET requests' filters, or ReportInvalid naming the field and the value refused.
    Without dates, the last 90 days; a range may not span more than 90 days (GeoReport
    v2); service_request_id overrides the other filters (each still has to make sense)."""
    statuses = frozenset(_listed(query.get("status", "")))
    if unknown := sorted(statuses - {"open", "closed"}):
        raise ReportInvalid(
            f"status: {unknown[0][:40]!r} is not a request status (open, closed, or both "
            "comma-separated)"
        )
    if query.get("service_request_id"):
        try:
            ids = parse_ids(query["service_request_id"], "service_request_id", MAX_RESULTS)
        except Invalid as exc:
            raise ReportInvalid(f"{exc}; expected comma-separated ids") from None
        return ReportSearch(ids=tuple(ids))
    codes = tuple(_listed(query.get("service_code", "")))
    if unknown := [c for c in codes if c not in CATALOGUE]:
        raise ReportInvalid(
            f"service_code: {unknown[0][:40]!r} is not a service code ({', '.join(CATALOGUE)})"
        )
    end = _date(query["end_date"], "end_date") if query.get("end_date") else now
    start = (
        _date(query["start_date"], "start_date")
        if query.get("start_date")
        else end - timedelta(days=90)
    )
    if start > end:
        raise ReportInvalid(f"start_date/end_date: {start.isoformat()} is after {end.isoformat()}")
    if end - start > timedelta(days=90):
        raise ReportInvalid(
            f"start_date/end_date: {start.isoformat()} to {end.isoformat()} spans "
            f"{(end - start).days} days; a range of at most 90 days"
        )
    return ReportSearch(statuses=statuses, service_codes=codes, start=start, end=end)


async def get_requests(request: web.Request) -> web.Response:
    fmt = _format(request)
    if fmt is None:
        return open311_error(404, "format: use .json or .xml")
    try:
        search = parse_search(request.query, utcnow())
    except ReportInvalid as exc:
        return open311_error(400, exc.description, fmt)
    full = sees_personal_data(request)
    with ctx(request).store.read() as conn:
        rows = _load(conn, find_reports(conn, search, MAX_RESULTS), full)
    return _private(respond(fmt, "service_requests", "request", rows))


async def get_request(request: web.Request) -> web.Response:
    fmt = _format(request)
    if fmt is None:
        return open311_error(404, "format: use .json or .xml")
    raw = request.match_info["id"]
    if not is_id(raw):
        return open311_error(404, f"service_request_id {raw[:40]!r} not found", fmt)
    with ctx(request).store.read() as conn:
        report = conn.execute(select(reports).where(reports.c.id == int(raw))).first()
        if report is None:
            return open311_error(404, f"service_request_id {raw!r} not found", fmt)
        rows = _load(conn, [report], sees_personal_data(request))
    return _private(respond(fmt, "service_requests", "request", rows))


async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=OPENAPI.read_bytes(), content_type="application/yaml")


def add_routes(app: web.Application) -> None:
    app.router.add_get(PREFIX + "/services.{fmt}", get_services)
    app.router.add_get(PREFIX + "/services/{code}.{fmt}", get_service_definition)
    app.router.add_post(PREFIX + "/requests.{fmt}", post_request)
    app.router.add_get(PREFIX + "/requests.{fmt}", get_requests)
    app.router.add_get(PREFIX + "/requests/{id}.{fmt}", get_request)
    app.router.add_get(PREFIX + "/openapi.yaml", openapi)

"""Open311 GeoReport v2 intake (JSON): services, create a request, read it back.

Errors follow the standard: a list of {"code", "description"} with the HTTP status.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from aiohttp import web
from sqlalchemy import select

from alerts.render import CATEGORY_ZH
from pingan.actions import accept_report
from pingan.clock import utcnow
from pingan.http.app import ctx, json_response, token_ok
from pingan.privacy import mask_phone
from pingan.reports import ReportInvalid, validate_report
from pingan.store import as_utc
from pingan.store.schema import incidents, reports

log = logging.getLogger("pingan.open311")
PREFIX = "/open311/v2"
AGENCY = "漯河市城市管理局 Luohe Urban Management Bureau"


def open311_error(status: int, description: str) -> web.Response:
    return json_response([{"code": status, "description": description}], status=status)


async def _fields(request: web.Request) -> dict[str, str]:
    """Form-encoded as the standard specifies, or a JSON object."""
    try:
        if request.content_type == "application/json":
            raw = await request.read()
            try:
                data = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError:
                raise ReportInvalid("body: not valid UTF-8") from None
            except json.JSONDecodeError as exc:
                raise ReportInvalid(
                    f"body: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
                ) from None
            if not isinstance(data, dict):
                raise ReportInvalid("body: expected a JSON object of request fields")
            return {
                str(k): ("" if v is None else str(v))
                for k, v in data.items()
                if not isinstance(v, dict | list)
            }
        form = await request.post()
    except web.HTTPRequestEntityTooLarge:
        raise ReportInvalid("body: larger than 64 KB", code=413) from None
    except UnicodeDecodeError:
        raise ReportInvalid("body: not valid UTF-8") from None
    return {k: v for k, v in form.items() if isinstance(v, str)}


async def post_request(request: web.Request) -> web.Response:
    c = ctx(request)
    try:
        fields = await _fields(request)
    except ReportInvalid as exc:
        return open311_error(exc.code, exc.description)
    api_key = fields.pop("api_key", "")
    if not api_key:
        return open311_error(403, "api_key: required")
    if not token_ok(api_key, c.open311_keys):
        return open311_error(403, "api_key: not valid")
    try:
        draft = validate_report(fields, c.playbooks.index.report_categories())
    except ReportInvalid as exc:
        return open311_error(exc.code, exc.description)
    report_id = await asyncio.to_thread(
        accept_report, c.store, draft, "open311", f"open311:{api_key[:6]}", utcnow()
    )
    log.info(
        "report accepted id=%s service_code=%s phone=%s",
        report_id,
        draft.service_code,
        mask_phone(draft.contact["phone"]) if "phone" in draft.contact else "-",
    )
    return json_response(
        [
            {
                "service_request_id": str(report_id),
                "service_notice": "已受理，我们会尽快处理。Received; a crew will be sent.",
                "account_id": None,
            }
        ]
    )


async def get_services(request: web.Request) -> web.Response:
    return json_response(
        [
            {
                "service_code": code,
                "service_name": CATEGORY_ZH.get(code, code),
                "description": CATEGORY_ZH.get(code, code),
                "metadata": False,
                "type": "realtime",
                "keywords": code.replace("_", ","),
                "group": "urban management",
            }
            for code in ctx(request).playbooks.index.report_categories()
        ]
    )


def _request_view(report: Any, incident: Any) -> dict[str, Any]:
    status = "closed" if incident is not None and incident.status == "resolved" else "open"
    updated = incident.updated_at if incident is not None else report.received_at
    return {
        "service_request_id": str(report.id),
        "status": status,
        "status_notes": f"incident {incident.id}: {incident.status}" if incident else "received",
        "service_name": CATEGORY_ZH.get(report.service_code, report.service_code),
        "service_code": report.service_code,
        "description": report.description,
        "agency_responsible": AGENCY,
        "requested_datetime": as_utc(report.received_at).isoformat(),  # type: ignore[union-attr]
        "updated_datetime": as_utc(updated).isoformat(),  # type: ignore[union-attr]
        "address": report.address or "",
        "lat": report.lat,
        "long": report.lon,
        "media_url": report.media_url or "",
    }


async def get_request(request: web.Request) -> web.Response:
    raw = request.match_info["id"]
    if not raw.isdigit():
        return open311_error(404, f"service_request_id {raw!r} not found")
    with ctx(request).store.read() as conn:
        report = conn.execute(select(reports).where(reports.c.id == int(raw))).first()
        if report is None:
            return open311_error(404, f"service_request_id {raw!r} not found")
        incident = None
        if report.incident_id is not None:
            incident = conn.execute(
                select(incidents).where(incidents.c.id == report.incident_id)
            ).first()
    return json_response([_request_view(report, incident)])


def add_routes(app: web.Application) -> None:
    app.router.add_get(f"{PREFIX}/services.json", get_services)
    app.router.add_post(f"{PREFIX}/requests.json", post_request)
    app.router.add_get(PREFIX + "/requests/{id}.json", get_request)

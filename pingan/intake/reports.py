"""Citizen reports: checking an Open311 GeoReport v2 request before anything is stored.
Pure: fields in, a draft or a reason out."""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from pingan.intake.location import district_at
from pingan.intake.services import CATALOGUE, AttributeInvalid, check_attributes

JURISDICTION = "luohe.gov.cn"
# GeoReport v2 limits description to 4,000 characters.
MAX_DESCRIPTION = 4000
MAX_FIELD = 500
CONTACT_FIELDS = ("email", "phone", "first_name", "last_name", "device_id", "account_id")


@dataclass(frozen=True)
class ReportDraft:
    service_code: str
    lat: float | None
    lon: float | None
    address: str | None
    description: str
    media_url: str | None
    contact: dict[str, str] = field(default_factory=dict)
    attributes: dict[str, str] = field(default_factory=dict)


class ReportInvalid(ValueError):
    """A request we refuse; `description` names the field and the problem."""

    def __init__(self, description: str, code: int = 400) -> None:
        super().__init__(description)
        self.code = code
        self.description = description


def _coordinate(fields: Mapping[str, str], name: str, low: float, high: float) -> float:
    raw = fields[name].strip()
    try:
        value = float(raw)
    except ValueError:
        raise ReportInvalid(f"{name}: {raw[:40]!r} is not a number") from None
    if not math.isfinite(value) or not low <= value <= high:
        raise ReportInvalid(f"{name}: {value} is outside {low}..{high}")
    return value


def validate_report(fields: Mapping[str, str], service_codes: Collection[str]) -> ReportDraft:
    for name, value in fields.items():
        limit = MAX_DESCRIPTION if name == "description" else MAX_FIELD
        if len(value) > limit:
            raise ReportInvalid(f"{name}: longer than {limit} characters")
    code = fields.get("service_code", "").strip()
    if not code:
        raise ReportInvalid("service_code: required")
    if code not in service_codes:
        known = ", ".join(sorted(service_codes))
        raise ReportInvalid(f"service_code: unknown service {code!r} (known: {known})")
    has_lat, has_lon = bool(fields.get("lat", "").strip()), bool(fields.get("long", "").strip())
    if has_lat != has_lon:
        raise ReportInvalid("lat/long: both are needed when one is given")
    lat = _coordinate(fields, "lat", -90, 90) if has_lat else None
    lon = _coordinate(fields, "long", -180, 180) if has_lon else None
    address = fields.get("address_string", "").strip() or None
    if lat is None and address is None:
        raise ReportInvalid("location: lat/long or address_string is required")
    media_url = fields.get("media_url", "").strip() or None
    if media_url and not media_url.startswith(("http://", "https://")):
        raise ReportInvalid("media_url: must be an http(s) URL")
    if lat is not None and lon is not None and district_at(lat, lon) is None:
        raise ReportInvalid(f"lat/long: {lat}, {lon} is outside the service area")
    jurisdiction = fields.get("jurisdiction_id", "").strip()
    if jurisdiction and jurisdiction != JURISDICTION:
        raise ReportInvalid(
            f"jurisdiction_id: {jurisdiction!r} is not served here (use {JURISDICTION!r})", code=404
        )
    attributes = {
        k[len("attribute[") : -1]: v
        for k, v in fields.items()
        if k.startswith("attribute[") and k.endswith("]")
    }
    service = CATALOGUE.get(code)
    if service is not None:
        try:
            attributes = check_attributes(service, attributes)
        except AttributeInvalid as exc:
            raise ReportInvalid(str(exc)) from None
    contact = {k: fields[k].strip() for k in CONTACT_FIELDS if fields.get(k, "").strip()}
    return ReportDraft(
        service_code=code,
        lat=lat,
        lon=lon,
        address=address,
        description=fields.get("description", "").strip(),
        media_url=media_url,
        contact=contact,
        attributes=attributes,
    )

"""CAP (Common Alerting Protocol) 1.0/1.1/1.2 messages and the Atom/RSS index feeds
that link to them. Pure: bytes in, parsed documents out, or FeedRejected with the
reason; and the other way, a CapAlert out as a CAP 1.2 document (`write_cap`), which
this parser reads back to the same CapAlert.

Safety: documents larger than MAX_BYTES are refused before parsing, and the XML
parser (defusedxml) refuses any DTD, so external entities and entity expansion (the
corpus has XXE attacks) are never resolved."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from xml.etree.ElementTree import Element, ParseError, SubElement, tostring

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

MAX_BYTES = 1024 * 1024
CAP12 = "urn:oasis:names:tc:emergency:cap:1.2"
CAP_NAMESPACES = {
    "urn:oasis:names:tc:emergency:cap:1.0": "1.0",
    "urn:oasis:names:tc:emergency:cap:1.1": "1.1",
    CAP12: "1.2",
}
ATOM = "{http://www.w3.org/2005/Atom}"
STATUSES = ("Actual", "Exercise", "System", "Test", "Draft")
MSG_TYPES = ("Alert", "Update", "Cancel", "Ack", "Error")
SCOPES = ("Public", "Restricted", "Private")
CATEGORIES = (
    "Geo",
    "Met",
    "Safety",
    "Security",
    "Rescue",
    "Fire",
    "Health",
    "Env",
    "Transport",
    "Infra",
    "CBRNE",
    "Other",
)
URGENCIES = ("Immediate", "Expected", "Future", "Past", "Unknown")
SEVERITIES = ("Extreme", "Severe", "Moderate", "Minor", "Unknown")
CERTAINTIES = ("Observed", "Likely", "Possible", "Unlikely", "Unknown", "Very Likely")


class FeedRejected(ValueError):
    """The document is refused; the message says why (for the log and the operator)."""


@dataclass(frozen=True)
class CapArea:
    description: str
    polygons: tuple[tuple[tuple[float, float], ...], ...] = ()  # rings of (lat, lon)
    circles: tuple[tuple[float, float, float], ...] = ()  # (lat, lon, radius km)
    geocodes: tuple[tuple[str, str], ...] = ()  # (valueName, value)


@dataclass(frozen=True)
class CapInfo:
    language: str
    categories: tuple[str, ...]
    event: str
    urgency: str
    severity: str
    certainty: str
    headline: str = ""
    description: str = ""
    sender_name: str = ""
    effective: datetime | None = None
    onset: datetime | None = None
    expires: datetime | None = None
    event_codes: tuple[tuple[str, str], ...] = ()
    parameters: tuple[tuple[str, str], ...] = ()
    areas: tuple[CapArea, ...] = ()


@dataclass(frozen=True)
class CapReference:
    """An earlier message referred to, as CAP names it: sender,identifier,sent. Old
    senders sometimes give the identifier alone (sender empty, sent None)."""

    sender: str
    identifier: str
    sent: datetime | None


@dataclass(frozen=True)
class CapAlert:
    version: str
    identifier: str
    sender: str
    sent: datetime
    status: str
    msg_type: str
    scope: str
    references: tuple[CapReference, ...] = ()
    infos: tuple[CapInfo, ...] = ()
    signed: bool = False

    @property
    def referenced_ids(self) -> tuple[str, ...]:
        """The identifiers of the messages this one updates or cancels."""
        return tuple(r.identifier for r in self.references)


@dataclass(frozen=True)
class IndexEntry:
    """An entry of an index feed: a link to a CAP message, or the message itself
    embedded in <content>."""

    id: str
    title: str
    link: str
    updated: str = ""
    alert: CapAlert | None = None


@dataclass(frozen=True)
class FeedIndex:
    entries: tuple[IndexEntry, ...]
    skipped: tuple[str, ...] = field(default=())  # entries left out, with the reason


def _parse_xml(data: bytes) -> Element:
    if len(data) > MAX_BYTES:
        raise FeedRejected(f"document is {len(data)} bytes; the limit is {MAX_BYTES}")
    if not data.strip():
        raise FeedRejected("document is empty")
    try:
        return fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise FeedRejected(
            f"refused: the document declares a DTD or entities ({exc!r}); "
            "external entities are never resolved"
        ) from None
    except ParseError as exc:
        raise FeedRejected(f"not well-formed XML: {exc}") from None


def _ns(tag: str) -> tuple[str, str]:
    if tag.startswith("{"):
        ns, _, local = tag[1:].partition("}")
        return ns, local
    return "", tag


def _text(parent: Element, ns: str, name: str) -> str:
    child = parent.find(f"{{{ns}}}{name}")
    return (child.text or "").strip() if child is not None else ""


def _all(parent: Element, ns: str, name: str) -> list[Element]:
    return parent.findall(f"{{{ns}}}{name}")


def _time(value: str, where: str, required: bool = False) -> datetime | None:
    if not value:
        if required:
            raise FeedRejected(f"{where}: required")
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise FeedRejected(f"{where}: {value!r} is not a CAP dateTime") from None
    if parsed.tzinfo is None:
        raise FeedRejected(f"{where}: {value!r} has no time zone")
    return parsed


def _one_of(value: str, allowed: tuple[str, ...], where: str) -> str:
    if value not in allowed:
        raise FeedRejected(f"{where}: {value!r} is not one of {', '.join(allowed)}")
    return value


def _required(parent: Element, ns: str, name: str, where: str) -> str:
    value = _text(parent, ns, name)
    if not value:
        raise FeedRejected(f"{where}.{name}: required")
    return value


def _pairs(parent: Element, ns: str, name: str) -> tuple[tuple[str, str], ...]:
    return tuple((_text(e, ns, "valueName"), _text(e, ns, "value")) for e in _all(parent, ns, name))


def _point(lat: float, lon: float, where: str, text: str) -> tuple[float, float]:
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):  # NaN fails both
        raise FeedRejected(f"{where}: {text[:60]!r} has a point off the globe (lat, lon)")
    return lat, lon


def parse_polygon(text: str, where: str) -> tuple[tuple[float, float], ...]:
    """CAP's polygon: whitespace-separated WGS 84 'lat,lon' pairs, at least 4, closed."""
    try:
        pairs = [(float(lat), float(lon)) for lat, lon in (p.split(",") for p in text.split())]
    except ValueError:
        raise FeedRejected(f"{where}: {text[:60]!r} is not a list of lat,lon pairs") from None
    points = tuple(_point(lat, lon, where, text) for lat, lon in pairs)
    if len(points) < 4 or points[0] != points[-1]:
        raise FeedRejected(f"{where}: a polygon needs at least 4 points, first = last")
    return points


def parse_circle(text: str, where: str) -> tuple[float, float, float]:
    """CAP's circle: 'lat,lon radius', the radius in kilometres."""
    number = r"(-?(?:\d+\.?\d*|\.\d+))"
    match = re.fullmatch(rf"\s*{number}\s*,\s*{number}\s+{number}\s*", text)
    if not match:
        raise FeedRejected(f"{where}: {text[:60]!r} is not 'lat,lon radius_km'")
    lat, lon, radius = (float(g) for g in match.groups())
    if radius < 0:
        raise FeedRejected(f"{where}: {text[:60]!r} has a negative radius")
    return (*_point(lat, lon, where, text), radius)


def _area(el: Element, ns: str, where: str) -> CapArea:
    return CapArea(
        description=_required(el, ns, "areaDesc", where),
        polygons=tuple(
            parse_polygon(p.text or "", f"{where}.polygon") for p in _all(el, ns, "polygon")
        ),
        circles=tuple(
            parse_circle(c.text or "", f"{where}.circle") for c in _all(el, ns, "circle")
        ),
        geocodes=_pairs(el, ns, "geocode"),
    )


def _info(el: Element, ns: str, where: str) -> CapInfo:
    categories = tuple(
        _one_of((c.text or "").strip(), CATEGORIES, f"{where}.category")
        for c in _all(el, ns, "category")
    )
    if not categories:
        raise FeedRejected(f"{where}.category: required")
    return CapInfo(
        language=_text(el, ns, "language") or "en-US",
        categories=categories,
        event=_required(el, ns, "event", where),
        urgency=_one_of(_required(el, ns, "urgency", where), URGENCIES, f"{where}.urgency"),
        severity=_one_of(_required(el, ns, "severity", where), SEVERITIES, f"{where}.severity"),
        certainty=_one_of(_required(el, ns, "certainty", where), CERTAINTIES, f"{where}.certainty"),
        headline=_text(el, ns, "headline"),
        description=_text(el, ns, "description"),
        sender_name=_text(el, ns, "senderName"),
        effective=_time(_text(el, ns, "effective"), f"{where}.effective"),
        onset=_time(_text(el, ns, "onset"), f"{where}.onset"),
        expires=_time(_text(el, ns, "expires"), f"{where}.expires"),
        event_codes=_pairs(el, ns, "eventCode"),
        parameters=_pairs(el, ns, "parameter"),
        areas=tuple(
            _area(a, ns, f"{where}.area[{i}]") for i, a in enumerate(_all(el, ns, "area"), start=1)
        ),
    )


def parse_references(text: str) -> tuple[CapReference, ...]:
    """CAP references are whitespace-separated 'sender,identifier,sent' triples."""
    out = []
    for triple in text.split():
        parts = triple.split(",")
        if len(parts) != 3:
            out.append(CapReference("", triple, None))
            continue
        sender, identifier, sent = parts
        try:  # a sloppy time in a reference must not cost the whole warning
            when = datetime.fromisoformat(sent)
        except ValueError:
            when = None
        out.append(CapReference(sender, identifier, when if when and when.tzinfo else None))
    return tuple(out)


def _token(parent: Element, ns: str, name: str) -> str:
    """identifier and sender: CAP forbids spaces, commas and the characters < and &."""
    value = _required(parent, ns, name, "alert")
    if re.search(r"[\s,<&]", value):
        raise FeedRejected(f"alert.{name}: {value!r} contains a space, comma, < or &")
    return value


def parse_cap(data: bytes) -> CapAlert:
    return _alert(_parse_xml(data))


def _alert(root: Element) -> CapAlert:
    ns, local = _ns(root.tag)
    if local != "alert" or ns not in CAP_NAMESPACES:
        raise FeedRejected(f"not a CAP alert: root element is <{local}> in namespace {ns!r}")
    where = "alert"
    alert = CapAlert(
        version=CAP_NAMESPACES[ns],
        identifier=_token(root, ns, "identifier"),
        sender=_token(root, ns, "sender"),
        sent=_time(_text(root, ns, "sent"), "alert.sent", required=True),  # type: ignore[arg-type]
        status=_one_of(_required(root, ns, "status", where), STATUSES, "alert.status"),
        msg_type=_one_of(_required(root, ns, "msgType", where), MSG_TYPES, "alert.msgType"),
        scope=_one_of(_required(root, ns, "scope", where), SCOPES, "alert.scope"),
        references=parse_references(_text(root, ns, "references")),
        infos=tuple(
            _info(el, ns, f"alert.info[{i}]")
            for i, el in enumerate(_all(root, ns, "info"), start=1)
        ),
        signed=any(_ns(child.tag)[1] == "Signature" for child in root),
    )
    if alert.msg_type in ("Update", "Cancel") and not alert.references:
        raise FeedRejected(f"alert.references: required for msgType {alert.msg_type}")
    return alert


def parse_index(data: bytes) -> FeedIndex:
    """An Atom or RSS feed whose entries link to CAP messages."""
    root = _parse_xml(data)
    ns, local = _ns(root.tag)
    entries: list[IndexEntry] = []
    skipped: list[str] = []
    if local == "feed" and f"{{{ns}}}" == ATOM:
        for n, entry in enumerate(root.findall(f"{ATOM}entry"), start=1):
            entry_id = _text(entry, ns, "id")
            links = entry.findall(f"{ATOM}link")
            href = next(
                (
                    link.get("href", "")
                    for link in links
                    if link.get("rel", "alternate") in ("alternate", "related") and link.get("href")
                ),
                "",
            )
            if not href and links:
                href = links[0].get("href", "")
            content = entry.find(f"{ATOM}content")
            embedded = (
                [c for c in content if _ns(c.tag)[1] == "alert"] if content is not None else []
            )
            if not entry_id:
                skipped.append(f"entry {n}: no <id>")
                continue
            alert = None
            if embedded:
                try:
                    alert = _alert(embedded[0])
                except FeedRejected as exc:
                    skipped.append(f"entry {n} ({entry_id}): embedded CAP alert refused: {exc}")
                    continue
            if not href and alert is None:
                skipped.append(
                    f"entry {n} ({entry_id}): no <link> to a CAP message and no embedded alert"
                )
                continue
            entries.append(
                IndexEntry(
                    entry_id, _text(entry, ns, "title"), href, _text(entry, ns, "updated"), alert
                )
            )
    elif local == "rss":
        channel = root.find("channel")
        if channel is None:
            raise FeedRejected("RSS without <channel>")
        for n, item in enumerate(channel.findall("item"), start=1):
            link = (item.findtext("link") or "").strip()
            guid = (item.findtext("guid") or "").strip() or link
            if not link:
                skipped.append(f"item {n}: no <link> to the CAP message")
                continue
            entries.append(
                IndexEntry(
                    guid,
                    (item.findtext("title") or "").strip(),
                    link,
                    (item.findtext("pubDate") or "").strip(),
                )
            )
    else:
        raise FeedRejected(f"not an Atom or RSS feed: root element is <{local}>")
    return FeedIndex(tuple(entries), tuple(skipped))


def parse_document(data: bytes) -> CapAlert | FeedIndex:
    """A CAP message or an index feed, whichever the document is."""
    root = _parse_xml(data)
    local = _ns(root.tag)[1]
    if local == "alert":
        return _alert(root)
    if local in ("feed", "rss"):
        return parse_index(data)
    raise FeedRejected(f"neither a CAP alert nor an Atom/RSS feed: root element is <{local}>")


# ---- writing ----------------------------------------------------------------------


def cap_time(value: datetime) -> str:
    """A CAP 1.2 dateTime (§3.3.2): whole seconds with the offset; UTC is written
    "-00:00", never "+00:00" or "Z"."""
    offset = value.utcoffset()
    if offset is None:
        raise ValueError(f"{value!r} has no time zone; CAP times carry their offset")
    text = value.replace(microsecond=0).isoformat()
    return text[:-6] + "-00:00" if not offset else text


def _number(value: float) -> str:
    """A coordinate or radius in plain decimals (never 1e-05), read back exactly."""
    text = format(Decimal(repr(value)), "f")
    return text if "." in text else f"{text}.0"


def _add(parent: Element, name: str, text: str | None) -> None:
    if text:
        SubElement(parent, f"{{{CAP12}}}{name}").text = text


def _add_pairs(parent: Element, name: str, pairs: tuple[tuple[str, str], ...]) -> None:
    for value_name, value in pairs:
        pair = SubElement(parent, f"{{{CAP12}}}{name}")
        _add(pair, "valueName", value_name)
        _add(pair, "value", value)


def write_cap(alert: CapAlert) -> Element:
    """The alert as a CAP 1.2 <alert>, its elements in the schema's order (serialise
    with `cap_bytes`). Only what CapAlert holds is written; `signed` is not a signature."""
    root = Element(f"{{{CAP12}}}alert")
    _add(root, "identifier", alert.identifier)
    _add(root, "sender", alert.sender)
    _add(root, "sent", cap_time(alert.sent))
    _add(root, "status", alert.status)
    _add(root, "msgType", alert.msg_type)
    _add(root, "scope", alert.scope)
    _add(
        root,
        "references",
        " ".join(
            f"{r.sender},{r.identifier},{cap_time(r.sent)}" if r.sender and r.sent else r.identifier
            for r in alert.references
        ),
    )
    for info in alert.infos:
        el = SubElement(root, f"{{{CAP12}}}info")
        _add(el, "language", info.language)
        for category in info.categories:
            _add(el, "category", category)
        _add(el, "event", info.event)
        _add(el, "urgency", info.urgency)
        _add(el, "severity", info.severity)
        _add(el, "certainty", info.certainty)
        _add_pairs(el, "eventCode", info.event_codes)
        for name in ("effective", "onset", "expires"):
            when = getattr(info, name)
            _add(el, name, cap_time(when) if when else None)
        _add(el, "senderName", info.sender_name)
        _add(el, "headline", info.headline)
        _add(el, "description", info.description)
        _add_pairs(el, "parameter", info.parameters)
        for area in info.areas:
            area_el = SubElement(el, f"{{{CAP12}}}area")
            _add(area_el, "areaDesc", area.description)
            for ring in area.polygons:
                points = (f"{_number(lat)},{_number(lon)}" for lat, lon in ring)
                _add(area_el, "polygon", " ".join(points))
            for lat, lon, radius in area.circles:
                _add(area_el, "circle", f"{_number(lat)},{_number(lon)} {_number(radius)}")
            _add_pairs(area_el, "geocode", area.geocodes)
    return root


def cap_bytes(root: Element) -> bytes:
    """A written <alert> as a UTF-8 document, CAP 1.2 the default namespace."""
    body = tostring(root, encoding="unicode", default_namespace=CAP12)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + body.encode()

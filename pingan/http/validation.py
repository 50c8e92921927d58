"""One vocabulary of edge checks for everything that comes in over HTTP.

Ids are bounded ASCII integers, times fall in a sane range, coordinates are finite and
on the Earth (reports: in the city), strings carry no control characters, JSON is
bounded in depth and its shape checked by a pydantic model per route. Each check
raises `Invalid` whose text names the field ("lat: 95.0 is outside -90..90"); routes
turn it into a 4xx in their own error format. Pure functions, except the two readers
of a request body at the end."""

from __future__ import annotations

import asyncio
import codecs
import json
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar
from xml.etree.ElementTree import Element

from aiohttp import web
from multidict import MultiDictProxy
from pydantic import BaseModel, ValidationError

MAX_ID_DIGITS = 18  # < 2**63: every id fits the databases' BIGINT
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
MAX_JSON_DEPTH = 32
MAX_JSON_BYTES = 64 * 1024
BODY_READ_TIMEOUT_S = 15.0  # a body that trickles in slower than this holds no connection

_ID = re.compile(rf"[0-9]{{1,{MAX_ID_DIGITS}}}", re.ASCII)
# C0 controls but tab, newline and carriage return; DEL; C1 controls; and what XML 1.0
# cannot carry at all (lone surrogates, U+FFFE, U+FFFF).
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
M = TypeVar("M", bound=BaseModel)


class Invalid(ValueError):
    """Bad input; str() is "field: what is wrong"."""

    def __init__(self, field: str, problem: str, status: int = 400) -> None:
        super().__init__(f"{field}: {problem}")
        self.field, self.status = field, status


# ---- values ---------------------------------------------------------------------


def is_id(raw: str) -> bool:
    return bool(_ID.fullmatch(raw))


def parse_id(raw: object, field: str) -> int:
    """A database id: 1 to 18 ASCII digits (not '¹', not '٣', not 20 digits)."""
    if isinstance(raw, bool):
        raise Invalid(field, "expected an id (a whole number)")
    if isinstance(raw, int):
        raw = str(raw)
    if not isinstance(raw, str) or not is_id(raw.strip()):
        shown = raw[:30] if isinstance(raw, str) else type(raw).__name__
        raise Invalid(field, f"{shown!r} is not an id (1-{MAX_ID_DIGITS} digits 0-9)")
    return int(raw.strip())


def parse_ids(raw: str, field: str, at_most: int = 1000) -> list[int]:
    parts = [p.strip() for p in raw.split(",") if p.strip()]
    if len(parts) > at_most:
        raise Invalid(field, f"at most {at_most} ids")
    return [parse_id(p, field) for p in parts]


def check_when(value: datetime, field: str) -> datetime:
    """Aware, and within 2000..2100, so arithmetic on it cannot overflow."""
    if value.tzinfo is None:
        raise Invalid(field, "needs a time zone (e.g. 2026-01-20T08:00:00+08:00)")
    if not EARLIEST <= value <= LATEST:
        raise Invalid(field, f"{value.isoformat()} is outside {EARLIEST.year}..{LATEST.year}")
    return value


def parse_when(raw: object, field: str, assume_utc: bool = False) -> datetime:
    if not isinstance(raw, str) or len(raw) > 40:
        raise Invalid(field, "expected an ISO 8601 time (2026-01-20T08:00:00+08:00)")
    text = raw.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise Invalid(field, f"{raw[:40]!r} is not an ISO 8601 time") from None
    if value.tzinfo is None and assume_utc:
        value = value.replace(tzinfo=UTC)
    return check_when(value, field)


def parse_number(raw: object, field: str, low: float, high: float) -> float:
    """A finite number within [low, high], from JSON (a number) or a form (text)."""
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise Invalid(field, "expected a number")
    try:
        value = float(raw.strip() if isinstance(raw, str) else raw)
    except (ValueError, OverflowError):
        raise Invalid(field, f"{str(raw)[:30]!r} is not a number") from None
    if not math.isfinite(value):
        raise Invalid(field, "must be a finite number")
    if not low <= value <= high:
        raise Invalid(field, f"{value:g} is outside {low:g}..{high:g}")
    return value


def parse_count(raw: str, field: str, low: int, high: int) -> int:
    """A whole number of things within [low, high] (a page size), from a query."""
    text = raw.strip()
    if not _ID.fullmatch(text):
        raise Invalid(field, f"{raw[:30]!r} is not a whole number")
    value = int(text)
    if not low <= value <= high:
        raise Invalid(field, f"{value} is outside {low}..{high}")
    return value


def parse_position(
    lat_raw: object, lon_raw: object, lat_field: str = "lat", lon_field: str = "long"
) -> tuple[float, float] | None:
    """(lat, lon) on the Earth, or None when neither is given."""
    missing = [raw in (None, "") for raw in (lat_raw, lon_raw)]
    if all(missing):
        return None
    if any(missing):
        raise Invalid(f"{lat_field}/{lon_field}", "both are needed when one is given")
    return (
        parse_number(lat_raw, lat_field, -90, 90),
        parse_number(lon_raw, lon_field, -180, 180),
    )


def parse_city_position(
    lat_raw: object, lon_raw: object, lat_field: str = "lat", lon_field: str = "long"
) -> tuple[float, float] | None:
    """parse_position, and inside the city's districts (a report elsewhere would send
    a crew thousands of kilometres)."""
    from pingan.intake.location import district_at

    found = parse_position(lat_raw, lon_raw, lat_field, lon_field)
    if found is not None and district_at(*found) is None:
        raise Invalid(f"{lat_field}/{lon_field}", f"{found[0]}, {found[1]} is outside the city")
    return found


def clean_text(text: str) -> str:
    """Without control characters (they break XML and terminals); tab, newline and
    carriage return stay."""
    return _CONTROL.sub("", text)


def clean_fields(fields: Mapping[str, str]) -> dict[str, str]:
    return {clean_text(k): clean_text(v) for k, v in fields.items()}


def clean_tree(root: Element) -> Element:
    """Every text, tail and attribute of an XML tree without control characters, so
    what was stored before the input was cleaned cannot make public XML malformed."""
    for element in root.iter():
        if element.text:
            element.text = clean_text(element.text)
        if element.tail:
            element.tail = clean_text(element.tail)
        for key, value in element.attrib.items():
            element.attrib[key] = clean_text(value)
    return root


# ---- JSON -----------------------------------------------------------------------


def json_depth(value: Any) -> int:
    """Nesting depth, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return deepest


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json(raw: bytes, charset: str | None = None) -> Any:
    """Bytes to a JSON value: at most MAX_JSON_BYTES, MAX_JSON_DEPTH deep, no NaN or
    Infinity (they are not JSON), in a charset Python knows."""
    if len(raw) > MAX_JSON_BYTES:
        raise Invalid("body", f"larger than {MAX_JSON_BYTES // 1024} KB", status=413)
    try:
        text = raw.decode(codecs.lookup(charset or "utf-8").name)
    except LookupError:
        raise Invalid("Content-Type", f"unknown charset {str(charset)[:40]!r}") from None
    except UnicodeDecodeError:
        raise Invalid("body", f"not valid {charset or 'UTF-8'}") from None
    # Count brackets first: the parser recurses, and 50,000 of them would exhaust it.
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH and _bracket_depth(text) > (
        MAX_JSON_DEPTH
    ):
        raise Invalid("body", f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        value = json.loads(text, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        raise Invalid(
            "body", f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    except (ValueError, RecursionError) as exc:
        raise Invalid("body", f"not valid JSON ({exc})") from None
    return value


def _bracket_depth(text: str) -> int:
    """Deepest [ / { nesting outside strings (an upper bound check; exact for JSON)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def model_of(model: type[M], data: Any, where: str = "body") -> M:
    """The JSON value as the route's pydantic model; the first problem names its field."""
    if not isinstance(data, dict):
        raise Invalid(where, "expected a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or where
        raise Invalid(field, first["msg"].lower()) from None


# ---- request bodies (the imperative edge) ---------------------------------------


async def read_json(request: web.Request) -> Any:
    """The body as JSON (empty body: {}), refusing what parse_json refuses."""
    try:
        async with asyncio.timeout(BODY_READ_TIMEOUT_S):
            raw = await request.read()
    except TimeoutError:
        raise Invalid("body", f"not received within {BODY_READ_TIMEOUT_S:g} s", 408) from None
    except web.HTTPRequestEntityTooLarge:
        raise Invalid("body", f"larger than {MAX_JSON_BYTES // 1024} KB", status=413) from None
    if not raw.strip():
        return {}
    return parse_json(raw, request.charset)


async def read_form(request: web.Request) -> MultiDictProxy[Any]:
    """The form (urlencoded or multipart); a malformed body, an unknown charset or a
    missing multipart boundary is the client's mistake, not ours."""
    if request.charset:
        try:
            codecs.lookup(request.charset)
        except LookupError:
            raise Invalid("Content-Type", f"unknown charset {request.charset[:40]!r}") from None
    try:
        async with asyncio.timeout(BODY_READ_TIMEOUT_S):
            return await request.post()
    except TimeoutError:
        raise Invalid("body", f"not received within {BODY_READ_TIMEOUT_S:g} s", 408) from None
    except web.HTTPRequestEntityTooLarge:
        raise Invalid("body", f"larger than {MAX_JSON_BYTES // 1024} KB", status=413) from None
    except UnicodeDecodeError:
        raise Invalid("body", f"not valid {request.charset or 'UTF-8'}") from None
    except (ValueError, LookupError, AssertionError) as exc:
        raise Invalid("body", f"not a readable form ({str(exc)[:80]})") from None

"""Subscribers: bulk import from CSV, opt-out and opt-in by SMS keyword.

CSV columns: phone, openid, home_district, work_district, language (zh|en), channels
(sms,wechat in order of preference), consent_source, consent_at (ISO time). A row with
a problem is written to the error report with its line number and the reason; the good
rows beside it are imported. A number already subscribed (in the file or the database)
is folded into the first."""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import select, update

from pingan.city import load_city
from pingan.phones import PhoneInvalid, mobile_e164
from pingan.store import Store, insert_or_ignore, record_audit
from pingan.store.schema import subscribers

BATCH = 10_000
STOP_WORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "退订", "TD"}
START_WORDS = {"START", "UNSTOP", "YES", "订阅"}


class RowInvalid(ValueError):
    pass


def parse_row(row: dict[str, str], districts: set[str], now: datetime) -> dict[str, Any]:
    phone = (row.get("phone") or "").strip()
    openid = (row.get("openid") or "").strip() or None
    if not phone and not openid:
        raise RowInvalid("phone or openid: one is required")
    try:
        phone_e164 = mobile_e164(phone) if phone else None
    except PhoneInvalid as exc:
        raise RowInvalid(str(exc)) from None
    home = (row.get("home_district") or "").strip() or None
    work = (row.get("work_district") or "").strip() or None
    for name, value in (("home_district", home), ("work_district", work)):
        if value is not None and value not in districts:
            raise RowInvalid(f"{name}: unknown district {value!r}")
    if home is None and work is None:
        raise RowInvalid("home_district or work_district: one is required")
    language = (row.get("language") or "zh").strip() or "zh"
    if language not in ("zh", "en"):
        raise RowInvalid(f"language: {language!r} is not zh or en")
    channels = (row.get("channels") or "sms").replace(" ", "") or "sms"
    if not set(channels.split(",")) <= {"sms", "wechat"}:
        raise RowInvalid(f"channels: {channels!r} (sms, wechat)")
    source = (row.get("consent_source") or "").strip()
    if not source:
        raise RowInvalid("consent_source: required (where the person agreed)")
    raw_at = (row.get("consent_at") or "").strip()
    try:
        consent_at = datetime.fromisoformat(raw_at) if raw_at else now
    except ValueError:
        raise RowInvalid(f"consent_at: {raw_at!r} is not an ISO time") from None
    if consent_at.tzinfo is None:
        raise RowInvalid(f"consent_at: {raw_at!r} has no time zone")
    return {
        "phone": phone_e164,
        "openid": openid,
        "home_district": home,
        "work_district": work,
        "language": language,
        "channels": channels,
        "consent_source": source[:64],
        "consent_at": consent_at,
    }


@dataclass
class ImportResult:
    rows: int = 0
    imported: int = 0
    duplicates: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)


def _batches(rows: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def import_csv(
    store: Store,
    source: TextIO,
    now: datetime,
    progress: TextIO | None = None,
    total_hint: int | None = None,
) -> ImportResult:
    result = ImportResult()
    districts = set(load_city().districts)
    seen_phones: set[str] = set()

    def good_rows() -> Iterator[dict[str, Any]]:
        reader = csv.DictReader(source)
        for line, row in enumerate(reader, start=2):  # line 1 is the header
            result.rows += 1
            try:
                parsed = parse_row(row, districts, now)
            except RowInvalid as exc:
                result.errors.append((line, str(exc)))
                continue
            if parsed["phone"] and parsed["phone"] in seen_phones:
                result.duplicates += 1
                continue
            if parsed["phone"]:
                seen_phones.add(parsed["phone"])
            yield parsed

    for batch in _batches(good_rows(), BATCH):
        with store.transaction() as conn:
            before = (
                conn.execute(
                    select(subscribers.c.id).order_by(subscribers.c.id.desc()).limit(1)
                ).scalar_one_or_none()
                or 0
            )
            conn.execute(insert_or_ignore(conn, subscribers), batch)
            added = conn.execute(select(subscribers.c.id).where(subscribers.c.id > before)).all()
        result.imported += len(added)
        result.duplicates += len(batch) - len(added)
        if progress is not None:
            done = f"{result.rows:,}" + (f"/{total_hint:,}" if total_hint else "")
            progress.write(
                f"\rimported {result.imported:,} of {done} rows, {len(result.errors):,} errors"
            )
            progress.flush()
    if progress is not None:
        progress.write("\n")
    with store.transaction() as conn:
        record_audit(
            conn,
            now,
            "import",
            "subscribers.imported",
            "subscribers",
            "-",
            {
                "rows": result.rows,
                "imported": result.imported,
                "duplicates": result.duplicates,
                "errors": len(result.errors),
            },
        )
    return result


def import_file(store: Store, path: Path, errors_path: Path, now: datetime) -> ImportResult:
    with path.open(encoding="utf-8-sig", newline="") as f:
        total = sum(1 for _ in f) - 1
    with path.open(encoding="utf-8-sig", newline="") as f:
        result = import_csv(store, f, now, progress=sys.stderr, total_hint=total)
    with errors_path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["line", "problem"])
        writer.writerows(result.errors)
    return result


def opt_keyword(body: str) -> str | None:
    word = body.strip().upper()
    if word in STOP_WORDS:
        return "stop"
    if word in START_WORDS:
        return "start"
    return None


def set_opt_out(store: Store, phone: str, stop: bool, now: datetime) -> bool | None:
    """Returns True when this changed the subscription (confirm it, once), False when it
    was already so (say nothing), None when the number is not a subscriber."""
    with store.transaction() as conn:
        row = conn.execute(
            select(subscribers.c.id, subscribers.c.opted_out_at).where(subscribers.c.phone == phone)
        ).first()
        if row is None:
            return None
        if (row.opted_out_at is not None) == stop:
            return False
        conn.execute(
            update(subscribers)
            .where(subscribers.c.id == row.id)
            .values(opted_out_at=now if stop else None)
        )
        record_audit(
            conn,
            now,
            "citizen",
            "subscriber.opted_out" if stop else "subscriber.opted_in",
            "subscriber",
            row.id,
            {},
        )
    return True

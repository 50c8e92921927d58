"""Citizen warnings: drafting (text, size, cost, audience), the two-person rule, and
corrections. Decisions are pure functions; the store work is in the command functions
at the end, each one transaction with its audit row and its event."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, or_, select, update

from alerts.cap import stored_area
from alerts.channels.base import WarningCard
from alerts.ledger import MAY_HAVE_REACHED, REACHED
from alerts.render import warning_card
from alerts.sms import sms_size
from pingan.city import load_city
from pingan.core import topics
from pingan.intake.feeds.cap import CapArea
from pingan.intake.feeds.normalize import area_districts
from pingan.store import Store, as_utc, emit, record_audit
from pingan.store.schema import citizen_warnings, sends, subscribers
from pingan.vocabulary import WARNING_CHANNELS
from playbooks.templates import load_templates

APPROVAL_THRESHOLD = 1000  # recipients; above it a second dispatcher must approve
SMS_PRICE_CNY = 0.05  # per segment, for the estimate shown before sending
HOTLINE = "12345"
CHUNK = 5000  # subscribers per send chunk (one event, one ledger batch)
RECEIVED = MAY_HAVE_REACHED  # a correction goes to these


class WarningRefused(ValueError):
    pass


@dataclass(frozen=True)
class Draft:
    text_zh: str
    text_en: str
    segments_zh: int
    segments_en: int
    encoding_zh: str


def draft_texts(template: str, districts: Sequence[str]) -> Draft:
    found = load_templates().get(template)
    if found is None:
        raise WarningRefused(f"template: unknown template {template!r}")
    city = load_city()
    names_zh = "、".join(city.districts[d].zh for d in districts)
    names_en = ", ".join(city.districts[d].en for d in districts)
    text_zh = found["zh"].format(district=names_zh, hotline=HOTLINE)
    text_en = found["en"].format(district=names_en, hotline=HOTLINE)
    zh, en = sms_size(text_zh), sms_size(text_en)
    return Draft(text_zh, text_en, zh.segments, en.segments, zh.encoding)


def card_of(row: Any) -> WarningCard:
    """A sent warning (a citizen_warnings row) as a card's short fields."""
    city = load_city()
    names = [city.districts[d].zh for d in row.districts if d in city.districts]
    return warning_card(
        row.id,
        row.event,
        row.level,
        row.msg_type,
        names,
        as_utc(row.approved_at or row.created_at),
        row.text_zh,
        whole_city=set(row.districts) >= set(city.districts),
    )


def needs_second_person(recipients: int, approval: str, threshold: int | None = None) -> bool:
    limit = APPROVAL_THRESHOLD if threshold is None else threshold
    return approval != "auto" and recipients > limit


def check_approver(
    drafted_by: str, approver: str, recipients: int, approval: str, threshold: int | None = None
) -> None:
    if needs_second_person(recipients, approval, threshold) and approver == drafted_by:
        raise WarningRefused(
            f"two-person rule: {recipients} recipients need a second dispatcher's approval; "
            "the drafter cannot approve their own warning"
        )


def audience_filter(districts: Sequence[str]):  # type: ignore[no-untyped-def]
    return or_(
        subscribers.c.home_district.in_(list(districts)),
        subscribers.c.work_district.in_(list(districts)),
    ) & subscribers.c.opted_out_at.is_(None)


def preview(conn: Connection, districts: Sequence[str]) -> dict[str, object]:
    """Recipients per district and channel, before anything is sent."""
    per_district = {}
    for district in districts:
        per_district[district] = conn.execute(
            select(func.count()).select_from(subscribers).where(audience_filter([district]))
        ).scalar_one()
    by_channel = dict(
        conn.execute(
            select(subscribers.c.channels, func.count())
            .where(audience_filter(districts))
            .group_by(subscribers.c.channels)
        ).all()
    )
    total = conn.execute(
        select(func.count()).select_from(subscribers).where(audience_filter(districts))
    ).scalar_one()
    return {"total": total, "per_district": per_district, "per_channel_preference": by_channel}


def _insert(
    conn: Connection,
    event: str,
    level: str,
    districts: Sequence[str],
    template: str,
    channels: Sequence[str],
    drafted_by: str,
    now: datetime,
    status: str = "draft",
    approved_by: str | None = None,
    expires: datetime | None = None,
    source_warning: str | None = None,
    audit_detail: dict[str, object] | None = None,
    area: dict[str, object] | None = None,
) -> int:
    """A new warning from a template, its audience counted now; audited."""
    draft = draft_texts(template, districts)
    recipients = preview(conn, districts)["total"]
    warning_id = conn.execute(
        citizen_warnings.insert().values(
            event=event,
            level=level,
            districts=list(districts),
            template=template,
            text_zh=draft.text_zh,
            text_en=draft.text_en,
            channels=list(channels),
            status=status,
            recipients=recipients,
            drafted_by=drafted_by,
            approved_by=approved_by,
            created_at=now,
            approved_at=now if approved_by else None,
            expires_at=expires,
            msg_type="Alert",
            source_warning=source_warning,
            area=area,
        )
    ).inserted_primary_key[0]
    record_audit(
        conn,
        now,
        drafted_by,
        "citizen_warning.drafted",
        "citizen_warning",
        warning_id,
        {"template": template, "recipients": recipients, **(audit_detail or {})},
    )
    return int(warning_id)


def draft_for_incident(
    conn: Connection,
    incident_id: int,
    event: str,
    level: str,
    districts: Sequence[str],
    template: str,
    channels: Sequence[str],
    approval: str,
    now: datetime,
) -> int:
    """A playbook's notify_citizens action: a draft for dispatchers to approve, or, when
    the level is marked auto-send, approved and sending at once. Once per incident,
    level and template: citizens never get the same warning twice."""
    drafted_by = f"playbook:incident-{incident_id}"
    existing = conn.execute(
        select(citizen_warnings.c.id).where(
            citizen_warnings.c.drafted_by == drafted_by,
            citizen_warnings.c.level == level,
            citizen_warnings.c.template == template,
        )
    ).scalar_one_or_none()
    if existing is not None:
        return int(existing)
    auto = approval == "auto"
    warning_id = _insert(
        conn,
        event,
        level,
        districts,
        template,
        channels,
        drafted_by,
        now,
        status="sent" if auto else "draft",
        approved_by="playbook (auto-send)" if auto else None,
        audit_detail={"incident_id": incident_id, "auto": auto},
    )
    if auto:
        row = conn.execute(
            select(citizen_warnings).where(citizen_warnings.c.id == warning_id)
        ).one()
        _enqueue(conn, row, now)
    return int(warning_id)


def create_draft(
    store: Store,
    event: str,
    level: str,
    districts: Sequence[str],
    template: str,
    channels: Sequence[str],
    actor: str,
    now: datetime,
    expires: datetime | None = None,
    source_warning: str | None = None,
    threshold: int | None = None,
    area: CapArea | None = None,
) -> dict[str, object]:
    """A draft for `districts`; or, targeted by `area` (a polygon or circle) and no
    districts given, for the districts the area covers (whose subscribers it reaches)."""
    city = load_city()
    if area is not None and not districts:
        districts = area_districts((area,), city)
        if not districts:
            raise WarningRefused("polygon/circle: covers none of the city's districts")
    unknown = [d for d in districts if d not in city.districts]
    if not districts or unknown:
        raise WarningRefused(
            f"districts: unknown {unknown}" if unknown else "districts: at least one"
        )
    if not channels or set(channels) - set(WARNING_CHANNELS):
        raise WarningRefused(f"channels: one or more of {', '.join(WARNING_CHANNELS)}")
    draft = draft_texts(template, districts)
    with store.transaction() as conn:
        warning_id = _insert(
            conn,
            event,
            level,
            districts,
            template,
            channels,
            actor,
            now,
            expires=expires,
            source_warning=source_warning,
            area=stored_area(area) if area is not None else None,
        )
        recipients = conn.execute(
            select(citizen_warnings.c.recipients).where(citizen_warnings.c.id == warning_id)
        ).scalar_one()
    return {
        "id": int(warning_id),
        "districts": list(districts),
        "recipients": recipients,
        "text_zh": draft.text_zh,
        "text_en": draft.text_en,
        "segments_zh": draft.segments_zh,
        "segments_en": draft.segments_en,
        "encoding_zh": draft.encoding_zh,
        "estimated_cost_cny": round(recipients * draft.segments_zh * SMS_PRICE_CNY, 2),
        "needs_second_person": needs_second_person(int(recipients), "required", threshold),
    }


def approve(
    store: Store,
    warning_id: int,
    actor: str,
    now: datetime,
    approval: str = "required",
    threshold: int | None = None,
) -> int:
    """Approve and start sending: the send is split into chunks of subscriber ids, one
    event each, so several workers share it. Returns the number of chunks."""
    with store.transaction() as conn:
        row = conn.execute(
            select(citizen_warnings).where(citizen_warnings.c.id == warning_id).with_for_update()
        ).first()
        if row is None:
            raise WarningRefused(f"warning {warning_id} does not exist")
        if row.status != "draft":
            raise WarningRefused(f"warning {warning_id} is {row.status}, not a draft")
        check_approver(row.drafted_by, actor, row.recipients, approval, threshold)
        conn.execute(
            update(citizen_warnings)
            .where(citizen_warnings.c.id == warning_id)
            .values(status="sent", approved_by=actor, approved_at=now)
        )
        record_audit(
            conn,
            now,
            actor,
            "citizen_warning.approved",
            "citizen_warning",
            warning_id,
            {"recipients": row.recipients},
        )
        return _enqueue(conn, row, now)


def _enqueue(conn: Connection, row: object, now: datetime) -> int:
    """One send event per CHUNK subscriber ids. A correction goes to the original's
    recipients (from the ledger), so its chunks cover those ids."""
    lo, hi = conn.execute(select(func.min(subscribers.c.id), func.max(subscribers.c.id))).one()
    if lo is None:
        return 0
    topic = (
        topics.SENDS_URGENT
        if row.level in ("red", "orange") or row.corrects
        else topics.SENDS_ROUTINE
    )  # type: ignore[attr-defined]
    chunks = 0
    for start in range(lo, hi + 1, CHUNK):
        emit(
            conn,
            topic,
            f"{row.id}:{start}",  # type: ignore[attr-defined]
            {
                "type": "warning.chunk",
                "warning_id": row.id,  # type: ignore[attr-defined]
                "from_id": start,
                "to_id": start + CHUNK - 1,
            },
            now,
        )
        chunks += 1
    return chunks


def correct(
    store: Store, original_id: int, msg_type: str, template_text_zh: str, actor: str, now: datetime
) -> int:
    """Update or Cancel a sent warning: the correction goes to exactly the people who
    received the original, approved at once (it reaches no one new)."""
    if msg_type not in ("Update", "Cancel"):
        raise WarningRefused("msg_type: Update or Cancel")
    with store.transaction() as conn:
        original = conn.execute(
            select(citizen_warnings).where(citizen_warnings.c.id == original_id)
        ).first()
        if original is None or original.status not in ("sent", "cancelled"):
            raise WarningRefused(f"warning {original_id} has not been sent")
        received = conn.execute(
            select(func.count())
            .select_from(sends)
            .where(sends.c.warning_id == original_id, sends.c.status.in_(RECEIVED))
        ).scalar_one()
        correction_id = conn.execute(
            citizen_warnings.insert().values(
                event=original.event,
                level=original.level,
                districts=original.districts,
                template=original.template,
                text_zh=template_text_zh,
                text_en=template_text_zh,
                channels=original.channels,
                status="sent",
                recipients=received,
                drafted_by=actor,
                approved_by=actor,
                created_at=now,
                approved_at=now,
                corrects=original_id,
                msg_type=msg_type,
                source_warning=original.source_warning,
                area=original.area,
            )
        ).inserted_primary_key[0]
        if msg_type == "Cancel":
            conn.execute(
                update(citizen_warnings)
                .where(citizen_warnings.c.id == original_id)
                .values(status="cancelled")
            )
        record_audit(
            conn,
            now,
            actor,
            f"citizen_warning.{msg_type.lower()}",
            "citizen_warning",
            correction_id,
            {"corrects": original_id, "recipients": received},
        )
        row = conn.execute(
            select(citizen_warnings).where(citizen_warnings.c.id == correction_id)
        ).one()
        _enqueue(conn, row, now)
    return int(correction_id)


def stats(conn: Connection, warning_id: int) -> dict[str, int]:
    counts = dict(
        conn.execute(
            select(sends.c.status, func.count())
            .where(sends.c.warning_id == warning_id)
            .group_by(sends.c.status)
        ).all()
    )
    return {
        "queued": counts.get("pending", 0),
        "sent": counts.get("sent", 0),
        "delivered": sum(counts.get(s, 0) for s in REACHED),
        "failed": counts.get("failed", 0),
        "undelivered": counts.get("undelivered", 0) + counts.get("canceled", 0),
        "opted_out": counts.get("opted_out", 0),
    }

"""Our published CAP on a real database, exactly: local times with their offset,
references naming the *referenced* messages (sender, identifier, their sent time),
the polygon or circle a warning was targeted by; valid against the OASIS CAP 1.2
schema, and read back by our own parser (and intake) to the same fields."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import xmlschema
from aiohttp.test_utils import TestClient

from alerts.cap import SENDER, published_alert
from alerts.citizen_warnings import WarningRefused, approve, correct, create_draft
from alerts.subscribers import import_csv
from pingan.city import load_city
from pingan.intake.feeds.cap import (
    CAP12,
    CapAlert,
    CapArea,
    cap_bytes,
    parse_cap,
    parse_circle,
    parse_polygon,
    write_cap,
)
from pingan.intake.feeds.normalize import cap_to_signal
from pingan.store import Store
from tests.conftest import NOW
from tests.integration.http_app import BEARER, with_client
from tests.unit.test_cap_writer import exact

XSD = xmlschema.XMLSchema(str(Path(__file__).parent.parent / "data" / "cap-schema" / "cap12.xsd"))
CAP = f"{{{CAP12}}}"
PEOPLE = """phone,openid,home_district,work_district,language,channels,consent_source,consent_at
13800000001,,yuanhui,,zh,sms,hotline,2026-01-01T00:00:00+08:00
13800000002,,yancheng,,zh,sms,hotline,2026-01-01T00:00:00+08:00
"""


@pytest.fixture
def people(store: Store) -> Store:
    import_csv(store, io.StringIO(PEOPLE), NOW)
    return store


def published(store: Store, warning_id: int) -> tuple[CapAlert, str]:
    """The alert as /cap/alerts/{id}.xml publishes it, and its document; checked
    against the schema and read back by our parser to exactly the same fields."""
    with store.read() as conn:
        alert = published_alert(conn, warning_id)
    assert alert is not None
    document = cap_bytes(write_cap(alert))
    XSD.validate(document.decode())
    assert exact(parse_cap(document)) == exact(alert)
    return alert, document.decode()


def test_times_are_local_and_references_name_the_referenced_messages(people: Store) -> None:
    twelve_hours = NOW + timedelta(hours=12)
    draft = create_draft(
        people,
        "blizzard",
        "yellow",
        ["yuanhui"],
        "blizzard-yellow",
        ["sms"],
        "alice",
        NOW,
        twelve_hours,
    )
    approve(people, draft["id"], "bob", NOW)  # 08:00 UTC is 16:00 in Luohe
    update = correct(
        people, draft["id"], "Update", "暴雪预警更新：请注意出行", "bob", NOW + timedelta(hours=1)
    )
    cancel = correct(people, update, "Cancel", "暴雪预警解除", "bob", NOW + timedelta(hours=2))

    original, xml = published(people, draft["id"])
    assert "<sent>2026-11-27T16:00:00+08:00</sent>" in xml
    assert "<expires>2026-11-28T04:00:00+08:00</expires>" in xml
    assert "+00:00" not in xml and "<references>" not in xml
    first = f"{SENDER},LUOHE-CGJ-{draft['id']},2026-11-27T16:00:00+08:00"

    _, xml = published(people, update)
    assert "<sent>2026-11-27T17:00:00+08:00</sent>" in xml
    assert f"<references>{first}</references>" in xml  # the original's sent, not 17:00

    _, xml = published(people, cancel)
    assert "<sent>2026-11-27T18:00:00+08:00</sent>" in xml
    second = f"{SENDER},LUOHE-CGJ-{update},2026-11-27T17:00:00+08:00"
    assert f"<references>{first} {second}</references>" in xml  # the whole chain it ends

    # Our own intake reads what we publish as what we meant.
    signal, headline = cap_to_signal(original)
    assert (signal.event, signal.level, signal.msg_type) == ("blizzard", "yellow", "Alert")
    assert signal.districts == ("yuanhui",) and headline.startswith("【")
    ended, _ = cap_to_signal(parse_cap(xml.encode()))
    assert (ended.msg_type, ended.references) == (
        "Cancel",
        (f"LUOHE-CGJ-{draft['id']}", f"LUOHE-CGJ-{update}"),
    )


def ring_around(district: str, half: float) -> str:
    d = load_city().districts[district]
    corners = [(-half, -half), (half, -half), (half, half), (-half, half), (-half, -half)]
    return " ".join(f"{round(d.lat + a, 4)},{round(d.lon + b, 4)}" for a, b in corners)


@pytest.mark.parametrize("shape", ["polygon", "circle"])
def test_a_warning_targeted_by_a_shape_publishes_that_shape(people: Store, shape: str) -> None:
    centre = load_city().districts["yuanhui"]
    if shape == "polygon":
        text = ring_around("yuanhui", 0.01)
        area = CapArea("", polygons=(parse_polygon(text, "polygon"),))
    else:
        text = f"{centre.lat},{centre.lon} 1.5"
        area = CapArea("", circles=(parse_circle(text, "circle"),))
    draft = create_draft(
        people, "blizzard", "orange", [], "blizzard-orange", ["sms"], "alice", NOW, area=area
    )
    assert (draft["districts"], draft["recipients"]) == (["yuanhui"], 1)
    approve(people, draft["id"], "bob", NOW)
    update = correct(people, draft["id"], "Update", "暴雪预警更新", "bob", NOW)

    for warning_id in (draft["id"], update):
        alert, xml = published(people, warning_id)
        assert f"<{shape}>{text}</{shape}>" in xml  # the shape exactly as it was targeted
        assert "<geocode>" not in xml  # beside the shape it would widen it to the district
        [zh, en] = alert.infos
        assert zh.areas[0].description == "源汇区" and en.areas[0].description == centre.en
        assert cap_to_signal(alert)[0].districts == ("yuanhui",)


def test_a_shape_over_no_district_is_refused(people: Store) -> None:
    nowhere = CapArea("", circles=((39.9, 116.4, 5.0),))  # Beijing
    with pytest.raises(WarningRefused, match="polygon/circle: covers none of the city's"):
        create_draft(
            people, "blizzard", "orange", [], "blizzard-orange", ["sms"], "alice", NOW, area=nowhere
        )


def test_drafting_by_shape_over_http(people: Store, tmp_path: Path) -> None:
    polygon = ring_around("yancheng", 0.005)  # north of the Sha, clear of 源汇区

    async def go(client: TestClient[Any, Any]) -> None:
        async def draft(**fields: Any) -> tuple[int, dict[str, Any]]:
            body = {"event": "blizzard", "level": "orange", "template": "blizzard-orange"}
            reply = await client.post(
                "/api/citizen-warnings", json={**body, **fields}, headers=BEARER
            )
            return reply.status, await reply.json()

        status, made = await draft(polygon=polygon)
        assert (status, made["districts"], made["recipients"]) == (201, ["yancheng"], 1)
        for fields, says in [
            ({"polygon": "33.5,114.0 33.6,114.0"}, "polygon: a polygon needs at least 4 points"),
            ({"polygon": "north of the river"}, "polygon: 'north of the river' is not a list"),
            ({"polygon": ring_around("yancheng", 100)}, "has a point off the globe"),
            ({"circle": "33.58,114.02"}, "circle: '33.58,114.02' is not 'lat,lon radius_km'"),
            ({"circle": "33.58,114.02 -3"}, "circle: '33.58,114.02 -3' has a negative radius"),
            ({}, "districts: at least one"),
        ]:
            status, error = await draft(**fields)
            field = next(iter(fields), "districts")
            assert status == 400, (fields, error)
            assert error["error"].startswith(f"{field}:") and says in error["error"], error
        approved = await client.post(f"/api/citizen-warnings/{made['id']}/approve", headers=BEARER)
        assert approved.status == 200, await approved.text()
        cap = await client.get(f"/cap/alerts/{made['id']}.xml")
        assert cap.headers["Content-Type"].startswith("application/cap+xml")
        assert f"<polygon>{polygon}</polygon>" in await cap.text()

    with_client(people, tmp_path, go)

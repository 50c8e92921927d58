"""What the console's map reads: the real district outlines as GeoJSON, crews' bases,
and the areas under a warning now (official ones by district, citizen ones by the
shape they were targeted by; cancelled, corrected and expired ones not at all)."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from shapely.geometry import shape

from alerts.citizen_warnings import approve, correct, create_draft
from alerts.subscribers import import_csv
from pingan.geo import point
from pingan.intake.feeds.cap import CapArea, parse_polygon
from pingan.store import Store
from tests.conftest import NOW
from tests.integration.http_app import BEARER, with_client

PEOPLE = """phone,openid,home_district,work_district,language,channels,consent_source,consent_at
13800000001,,yuanhui,,zh,sms,hotline,
13800000002,,yancheng,,zh,sms,hotline,
"""
ACROSS_THE_SHA = "33.575,113.99 33.575,114.01 33.59,114.01 33.59,113.99 33.575,113.99"


def test_the_district_map_is_the_real_outlines_and_the_zones_centres(
    staffed_store: Store, tmp_path: Path
) -> None:
    async def go(client: TestClient[Any, Any]) -> None:
        reply = await client.get("/api/districts", headers=BEARER)
        assert reply.status == 200 and reply.content_type == "application/geo+json"
        features = (await reply.json(content_type=None))["features"]
        kinds = {f["properties"]["code"]: f["properties"]["kind"] for f in features}
        assert kinds == {
            "yuanhui": "district",
            "yancheng": "district",
            "shaoling": "district",
            "jingkai": "zone",
            "xicheng": "zone",
            "wuyang": "district",
            "linying": "district",
        }
        for f in features:
            lat, lon = f["properties"]["centre"]
            if f["properties"]["kind"] == "district":
                outline = shape(f["geometry"])
                assert outline.covers(point(lat, lon)), f["properties"]["code"]
                assert len(outline.geoms[0].exterior.coords) > 40  # real, not a rectangle
            else:
                assert f["geometry"] == {"type": "Point", "coordinates": [lon, lat]}
        yancheng = next(f for f in features if f["properties"]["code"] == "yancheng")
        assert yancheng["properties"]["zh"] == "郾城区"
        assert yancheng["properties"]["gbt2260"] == "411103"

        crews = (await (await client.get("/api/crews", headers=BEARER)).json())["crews"]
        assert {tuple(c["home"]) for c in crews if c["id"] == "tree-near"} == {(33.572, 114.016)}

        anonymous = await client.get("/api/districts")
        assert anonymous.status == 401

    with_client(staffed_store, tmp_path, go)


def test_warning_areas_are_what_is_in_force_now(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import_csv(store, io.StringIO(PEOPLE), NOW)
    area = CapArea("", polygons=(parse_polygon(ACROSS_THE_SHA, "polygon"),))

    def sent(districts: list[str], shape: CapArea | None = None, **kw: Any) -> int:
        made = create_draft(
            store, "blizzard", "orange", districts, "blizzard-orange", ["sms"], "alice", NOW,
            area=shape, **kw,
        )  # fmt: skip
        approve(store, made["id"], "bob", NOW)
        return int(made["id"])

    by_shape = sent([], area)
    by_district = sent(["yuanhui"])
    cancelled = sent(["yancheng"])
    correct(store, cancelled, "Cancel", "暴雪预警解除", "bob", NOW)
    updated = sent(["yancheng"])
    update = correct(store, updated, "Update", "暴雪预警更新", "bob", NOW)
    sent(["yuanhui"], expires=NOW - timedelta(minutes=1))  # already over

    async def go(client: TestClient[Any, Any]) -> dict[str, Any]:
        official = await client.post(
            "/api/warnings",
            headers=BEARER,
            json={
                "id": "LH-1",
                "event": "暴雪",
                "level": "黄色",
                "districts": ["wuyang"],
                "expires": "2100-01-01T00:00:00+08:00",
            },
        )
        assert official.status == 202, await official.text()
        reply = await client.get("/api/warning-areas", headers=BEARER)
        assert reply.status == 200
        return await reply.json()

    monkeypatch.setattr("pingan.http.console.utcnow", lambda: NOW + timedelta(minutes=5))
    body = with_client(store, tmp_path, go)
    areas = {(w["kind"], w["id"]): w for w in body["warnings"]}
    assert set(areas) == {
        ("official", "LH-1"),
        ("citizen", str(by_shape)),
        ("citizen", str(by_district)),
        ("citizen", str(update)),
    }
    assert areas[("official", "LH-1")]["districts"] == ["wuyang"]
    assert areas[("official", "LH-1")]["level"] == "yellow"
    shaped = areas[("citizen", str(by_shape))]
    assert shaped["districts"] == ["yuanhui", "yancheng"]
    assert shaped["area"]["polygons"] == [[list(p) for p in area.polygons[0]]]
    assert areas[("citizen", str(by_district))]["area"] is None

"""The console's map in a real headless Chromium: Leaflet served from the package (no
CDN, no tile server) draws the five real district outlines vertex for vertex, shades a
district under an official warning in its level's colour, shows crews' bases, and an
incident marker coloured by level opens the incident's detail when clicked; the page's
Content-Security-Policy blocks nothing it needs. Screenshots go to
test-artifacts/console/."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Browser, expect

from pingan.settings import PACKAGE_ROOT
from tests.conftest import ROSTER
from tests.e2e.harness import Stack, wait_for
from tests.e2e.test_console_browser import login, make_people, shot

pytestmark = pytest.mark.e2e
ORANGE = "#ef6c00"  # console/map.js LEVEL_COLOURS


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    data = tmp_path_factory.mktemp("console-map") / "data"
    make_people(data)
    running = Stack(data, {"PINGAN_ROSTER_FILE": str(ROSTER)})
    yield running
    running.stop()


def vertices_per_district() -> dict[str, int]:
    """Each district's vertex count in the shipped outlines (a ring repeats its first
    point last; Leaflet draws it once)."""
    codes = {"411102": "yuanhui", "411103": "yancheng", "411104": "shaoling"}
    codes |= {"411121": "wuyang", "411122": "linying"}
    collection = json.loads((PACKAGE_ROOT / "data" / "districts.geojson").read_text("utf-8"))
    return {
        codes[f["properties"]["gbt2260"]]: sum(
            len(ring) - 1 for polygon in f["geometry"]["coordinates"] for ring in polygon
        )
        for f in collection["features"]
    }


def test_the_map_shows_the_real_outlines_and_opens_an_incident(
    stack: Stack, browser: Browser
) -> None:
    reply = stack.report(lat=33.5905, long=114.0112, description="嵩山路大树倒了")
    assert reply.status_code == 200, reply.text
    incident = wait_for(lambda: stack.incidents(), what="the report's incident")[0]
    expires = (datetime.now(UTC) + timedelta(hours=6)).isoformat()
    warning = stack.http.post(
        "/api/warnings",
        headers=stack.auth,
        json={
            "id": "LH-MAP-1",
            "event": "暴雪",
            "level": "橙色",
            "districts": ["wuyang"],
            "expires": expires,
        },
    )
    assert warning.status_code < 300, warning.text

    page = login(browser, stack, "alice")
    problems: list[str] = []
    page.on(
        "console",
        lambda m: problems.append(m.text) if m.type in ("error", "warning") else None,
    )
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.click("button[data-tab=map]")

    outlines = page.locator("path.district-outline")
    expect(outlines).to_have_count(5)
    for code, count in vertices_per_district().items():
        d = page.locator(f"path.district-outline[data-district={code}]").get_attribute("d") or ""
        assert len(re.findall(r"[ML]", d)) == count, code  # every real vertex, unsimplified
    labels = page.locator(".district-label")
    expect(labels).to_have_count(5)
    expect(page.locator("#leafletmap")).to_contain_text("临颍县")
    wuyang = page.locator("path.district-outline[data-district=wuyang]")
    expect(wuyang).to_have_attribute("fill", ORANGE, timeout=10_000)  # under the warning
    expect(page.locator("path.district-outline[data-district=linying]")).not_to_have_attribute(
        "fill", ORANGE
    )
    expect(page.locator("path.crew-base")).to_have_count(9)  # tests/data/roster.yaml

    marker = page.locator(f"path.incident-marker[data-incident='{incident['id']}']")
    expect(marker).to_have_attribute("data-level", incident["level"])
    expect(marker).to_have_class(re.compile(rf"level-{incident['level']}"))
    shot(page, "11-map-real-outlines")
    marker.click()
    expect(page.locator("#board")).to_have_class(re.compile(r"\bactive\b"))
    expect(page.locator("#detail")).to_be_visible()
    expect(page.locator("#detail h3")).to_contain_text(f"#{incident['id']}")
    shot(page, "12-map-click-opens-detail")
    assert not [p for p in problems if "Content Security Policy" in p or "Refused" in p], problems
    assert not [p for p in problems if "Error" in p], problems
    page.context.close()

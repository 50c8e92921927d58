"""The city's geography from its real outlines: reports near the borders fall in the
right district, CAP shapes reach exactly the districts they share area with, the
invented roads, places, bases and centres all sit inside the real outlines, roads are
lines with a corridor around them, and WGS-84 → GCJ-02 matches a maintained library."""

from __future__ import annotations

import pytest
import yaml

from pingan.city import load_city, parse_city
from pingan.geo import distance_m, map_link, point, to_metres, wgs84_to_gcj02
from pingan.intake.feeds.cap import CapArea
from pingan.intake.feeds.normalize import area_districts
from pingan.intake.location import (
    GAZETTEER_FILE,
    ROAD_HALF_WIDTH_M,
    axis,
    district_at,
    load_gazetteer,
    locate,
    segment_at,
)
from pingan.settings import PACKAGE_ROOT

CITY = load_city()
M_PER_DEG_LAT = 111_195

# Points 250 m either side of each shared border (at its middle, and for the long
# ones at a quarter and three quarters along), and 250 m outside the city's edge,
# taken once from pingan/data/districts.geojson. The nearest-centre rule this replaced
# put most of them in the wrong district (the centre named last, where it differs).
BORDER_POINTS = [
    # (lat, lon, district; None: outside the city)
    (33.58948, 113.98083, "yancheng"),  # Sha river, west of the city: nearest centre yancheng
    (33.58531, 113.97881, "yuanhui"),  # ... yancheng
    (33.59029, 113.90049, "yancheng"),  # ... xicheng
    (33.58619, 113.90271, "yuanhui"),  # ... xicheng
    (33.56273, 114.03982, "shaoling"),  # east of the confluence: ... jingkai
    (33.56329, 114.03446, "yuanhui"),
    (33.54988, 114.03837, "shaoling"),  # ... jingkai
    (33.55039, 114.03301, "yuanhui"),  # ... jingkai
    (33.5164, 113.83738, "wuyang"),  # ... xicheng
    (33.51241, 113.83987, "yuanhui"),  # ... xicheng
    (33.61507, 114.07816, "shaoling"),
    (33.61645, 114.07302, "yancheng"),  # ... shaoling
    (33.58727, 114.06739, "shaoling"),
    (33.58865, 114.06225, "yancheng"),  # ... shaoling
    (33.64488, 113.78711, "wuyang"),  # ... xicheng
    (33.64756, 113.79145, "yancheng"),  # ... xicheng
    (33.74102, 113.91086, "linying"),
    (33.73885, 113.90612, "yancheng"),  # ... linying
    (33.73049, 113.99233, "linying"),
    (33.72689, 113.99558, "yancheng"),  # ... linying
    (33.43482, 113.73962, "wuyang"),
    (33.43036, 113.74027, None),  # south of Wuyang
    (33.9443, 114.07427, "linying"),
    (33.94617, 114.0792, None),  # north of Linying
    (33.53711, 114.28671, "shaoling"),
    (33.53688, 114.2921, None),  # east of Shaoling
    (33.532, 114.04, None),  # where the invented 淞江路 used to be: outside the city
    (39.9, 116.4, None),  # Beijing
]


@pytest.mark.parametrize(("lat", "lon", "district"), BORDER_POINTS)
def test_a_point_falls_in_the_real_district_that_holds_it(
    lat: float, lon: float, district: str | None
) -> None:
    assert district_at(lat, lon) == district
    assert locate(lat, lon).district == district


def test_every_real_district_has_its_outline_and_the_zones_have_none() -> None:
    outlined = {d.code: d.gbt2260 for d in CITY.outlined()}
    assert outlined == {
        "yuanhui": "411102",
        "yancheng": "411103",
        "shaoling": "411104",
        "wuyang": "411121",
        "linying": "411122",
    }
    assert CITY.districts["jingkai"].outline is None and CITY.districts["xicheng"].outline is None


def test_a_centre_outside_its_outline_becomes_a_point_inside_it() -> None:
    text = (PACKAGE_ROOT / "data" / "city.yaml").read_text(encoding="utf-8")
    moved = text.replace("centre: [33.5650, 114.0050]", "centre: [33.9000, 114.3000]")
    assert moved != text
    city = parse_city(moved)
    yuanhui = city.districts["yuanhui"]
    assert yuanhui.covers(yuanhui.lat, yuanhui.lon)
    assert (yuanhui.lat, yuanhui.lon) != (33.9, 114.3)
    # Configured centres inside their outlines stay as configured.
    assert (CITY.districts["yuanhui"].lat, CITY.districts["yuanhui"].lon) == (33.565, 114.005)


# The invented demo data must sit inside the real outlines.


def _home_district(code: str) -> str:
    """The district a gazetteer place or a crew's unit belongs to ("yuanhui-01")."""
    return code.rsplit("-", 1)[0]


def _inside(district: str, lat: float, lon: float) -> bool:
    d = CITY.districts.get(district)
    if d is not None and d.outline is not None:
        return d.covers(lat, lon)
    return district_at(lat, lon) is not None  # a functional zone, or citywide: the city


def test_district_centres_lie_inside_the_real_outlines() -> None:
    for d in CITY.districts.values():
        assert _inside(d.code, d.lat, d.lon), d.code


def test_gazetteer_places_and_roads_lie_inside_their_districts() -> None:
    for place in load_gazetteer():
        assert _inside(place.district, place.lat, place.lon), place.name
        assert place.segment.startswith(place.district + "-"), place.name
        for lat, lon in place.line:
            assert _inside(place.district, lat, lon), (place.name, lat, lon)
        if place.line:  # where a report naming the road is put lies on the road
            assert segment_at(place.lat, place.lon) == place.segment, place.name
            here = to_metres(point(place.lat, place.lon), place.lat, place.lon)
            road = to_metres(axis(place), place.lat, place.lon)
            assert here.distance(road) < 1, place.name


def test_crew_bases_lie_inside_their_units_districts() -> None:
    roster = yaml.safe_load((PACKAGE_ROOT / "data" / "roster.yaml").read_text(encoding="utf-8"))
    for crew in roster["crews"]:
        lat, lon = crew["home"]
        assert _inside(_home_district(crew["unit"]), lat, lon), crew["id"]
    assert "INVENTED" in (PACKAGE_ROOT / "data" / "roster.yaml").read_text(encoding="utf-8")
    assert "INVENTED" in GAZETTEER_FILE.read_text(encoding="utf-8")


# Road segments are lines with a corridor; landmarks are discs.

RENMIN_LAT, RENMIN_LON = 33.5712, 114.0130  # on 人民路, clear of other roads and places
SHOUXIANG_LON = 114.0090  # 受降路 runs north-south across 人民路 here


def north(metres: float) -> float:
    return metres / M_PER_DEG_LAT


def east(metres: float, lat: float) -> float:
    return metres / (M_PER_DEG_LAT * 0.8331)  # cos(33.58°)


@pytest.mark.parametrize(
    ("lat", "lon", "segment", "why"),
    [
        (RENMIN_LAT, RENMIN_LON, "yuanhui-01", "on 人民路"),
        (RENMIN_LAT + north(40), RENMIN_LON, "yuanhui-01", "40 m off 人民路: inside its corridor"),
        (RENMIN_LAT + north(100), RENMIN_LON, None, "100 m off: on no road, near no place"),
        (
            RENMIN_LAT + north(20),
            SHOUXIANG_LON + east(50, RENMIN_LAT),
            "yuanhui-01",
            "at the crossing, 20 m from 人民路 and 50 m from 受降路",
        ),
        (
            RENMIN_LAT + north(50),
            SHOUXIANG_LON + east(20, RENMIN_LAT),
            "yuanhui-04",
            "at the crossing, 20 m from 受降路",
        ),
        (33.5734, 114.0202, "yuanhui-05", "沙河大桥, a landmark with no line"),
        (33.5600, 114.0900, "shaoling-03", "湘江路's far end"),
        (33.5300, 113.9500, None, "fields west of the city: no segment"),
    ],
)
def test_a_point_is_on_the_segment_whose_corridor_holds_it(
    lat: float, lon: float, segment: str | None, why: str
) -> None:
    assert segment_at(lat, lon) == segment, why


def test_the_corridor_is_as_wide_as_configured() -> None:
    inside = RENMIN_LAT + north(ROAD_HALF_WIDTH_M - 2)
    outside = RENMIN_LAT + north(ROAD_HALF_WIDTH_M + 2)
    assert segment_at(inside, RENMIN_LON) == "yuanhui-01"
    assert segment_at(outside, RENMIN_LON) is None
    assert distance_m(RENMIN_LAT, RENMIN_LON, outside, RENMIN_LON) == pytest.approx(62, abs=0.5)


# CAP shapes reach the districts they share area with.


def ring(*points: tuple[float, float]) -> tuple[tuple[float, float], ...]:
    return (*points, points[0])


ACROSS_THE_SHA = ring((33.575, 113.99), (33.575, 114.01), (33.590, 114.01), (33.590, 113.99))
WEST_OF_THE_CITY = ring((33.4, 113.0), (33.4, 113.74), (33.7, 113.74), (33.7, 113.0))


@pytest.mark.parametrize(
    ("area", "districts", "why"),
    [
        (CapArea("", polygons=(ACROSS_THE_SHA,)), ("yuanhui", "yancheng"), "over part of two"),
        (
            CapArea("", polygons=(ring((33.56, 114.0), (33.56, 114.01), (33.57, 114.0)),)),
            ("yuanhui",),
            "inside one",
        ),
        (CapArea("", circles=((33.5712, 114.0153, 0.0),)), ("yuanhui",), "a point: radius 0"),
        (
            CapArea("", circles=((33.5712, 114.0153, 2.0),)),
            ("yuanhui", "yancheng"),
            "2 km around 人民路 crosses the Sha",
        ),
        (
            CapArea("", circles=((33.535, 114.03, 0.3),)),
            ("yuanhui", "jingkai"),
            "a zone is reached when the shape holds its centre",
        ),
        (CapArea("", polygons=(WEST_OF_THE_CITY,)), ("wuyang",), "west of 113.74: Wuyang only"),
        (CapArea("", geocodes=(("GB/T 2260", "411104"),)), ("shaoling",), "a geocode"),
        (CapArea("临颍县、舞阳县"), ("wuyang", "linying"), "names, in the city's order"),
        (CapArea("", circles=((39.9, 116.4, 50.0),)), (), "Beijing"),
        (
            CapArea("", polygons=(ring((33.5, 179.9), (33.6, -179.9), (33.7, 179.9)),)),
            (),
            "a small triangle across the 180th meridian is not a band around the Earth",
        ),
    ],
)
def test_a_cap_area_reaches_the_districts_it_shares_area_with(
    area: CapArea, districts: tuple[str, ...], why: str
) -> None:
    assert area_districts((area,), CITY) == districts, why


def test_a_polygon_that_only_touches_a_border_does_not_reach_across_it() -> None:
    yancheng = CITY.districts["yancheng"].outline
    assert yancheng is not None
    [part] = yancheng.geoms
    ring_of_yancheng = tuple((lat, lon) for lon, lat in part.exterior.coords)
    assert area_districts((CapArea("", polygons=(ring_of_yancheng,)),), CITY) == ("yancheng",)


# WGS-84 → GCJ-02, against gcoord 1.0.7 (npm, MIT): its own test's point, and ours.


@pytest.mark.parametrize(
    ("wgs", "gcj"),
    [
        ((45.0, 123.0), (45.00197815, 123.00607541)),  # gcoord's WGS84.spec.ts
        ((33.5712, 114.0153), (33.56970490, 114.02122065)),  # 人民路
        ((33.58, 114.02), (33.57852205, 114.02593404)),
        ((33.437, 113.61), (33.43520889, 113.61590609)),  # 舞阳
        ((33.806, 113.93), (33.80436297, 113.93575567)),  # 临颍
    ],
)
def test_wgs84_to_gcj02_matches_gcoord(wgs: tuple[float, float], gcj: tuple[float, float]) -> None:
    lat, lon = wgs84_to_gcj02(*wgs)
    assert (lat, lon) == (pytest.approx(gcj[0], abs=5e-8), pytest.approx(gcj[1], abs=5e-8))


def test_gcj02_leaves_points_outside_china_alone() -> None:
    assert wgs84_to_gcj02(51.5, -0.12) == (51.5, -0.12)
    assert wgs84_to_gcj02(45.0, 183.0) == (45.0, 183.0)
    shift = distance_m(33.5712, 114.0153, *wgs84_to_gcj02(33.5712, 114.0153))
    assert 400 < shift < 800  # the offset a dispatcher would see in Luohe


def test_the_crews_map_link_is_amaps_marker_uri_in_gcj02() -> None:
    """Amap's URI API (lbs.amap.com/api/uri-api/guide/mobile-web/point): position is
    lon,lat; coordinate=gaode says GCJ-02; callnative=1 opens the app where there is one."""
    assert map_link(33.5712, 114.0153, "任务12 倒伏树木") == (
        "https://uri.amap.com/marker?position=114.021221,33.569705"
        "&name=%E4%BB%BB%E5%8A%A112%20%E5%80%92%E4%BC%8F%E6%A0%91%E6%9C%A8"
        "&src=pingan&coordinate=gaode&callnative=1"
    )
    assert "name=a%26b%3Dc%22%3E" in map_link(33.5712, 114.0153, 'a&b=c">')  # no injection

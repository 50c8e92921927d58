"""Geometry on the city's scale (a few tens of km). Pure.

Shapes are shapely geometries in WGS 84 longitude/latitude (x = lon, y = lat), the
order GeoJSON writes; CAP and our own records write (lat, lon), so every function
here takes (lat, lon) and builds the shape. Containment and intersection are exact in
degrees; lengths (a circle's radius, a distance to a road's line) are measured in
metres on a plane tangent at the shape's own latitude, within a fraction of a percent
at this scale. Distances between two points are haversine.

Chinese map apps (Amap/高德, Tencent) expect GCJ-02, the obfuscated datum every
published map of China uses: `wgs84_to_gcj02` converts (the published algorithm, as
gcoord, eviltransform and fast-geocn implement it), and `map_link` is the web link a
crew's phone opens (Android or iPhone, in the browser or the Amap app)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from urllib.parse import quote, urlencode

import shapely
from shapely.geometry import Point, Polygon
from shapely.geometry.base import BaseGeometry

EARTH_RADIUS_M = 6_371_008.8
M_PER_DEG_LAT = math.pi * EARTH_RADIUS_M / 180  # on the same sphere as distance_m


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(a))


def point(lat: float, lon: float) -> Point:
    return Point(lon, lat)


def _scale(lat: float) -> tuple[float, float]:
    """Metres per degree of (lon, lat) at `lat`."""
    return (M_PER_DEG_LAT * math.cos(math.radians(lat)), M_PER_DEG_LAT)


def to_metres(geom: BaseGeometry, lat: float, lon: float) -> BaseGeometry:
    """`geom` on the plane tangent at (lat, lon), in metres east and north of it."""
    origin, scale = (lon, lat), _scale(lat)
    return shapely.transform(geom, lambda xy: (xy - origin) * scale)


def from_metres(geom: BaseGeometry, lat: float, lon: float) -> BaseGeometry:
    origin, scale = (lon, lat), _scale(lat)
    return shapely.transform(geom, lambda xy: xy / scale + origin)


def ring(points: Sequence[tuple[float, float]]) -> BaseGeometry:
    """CAP's polygon, (lat, lon) points, as an area. A ring that crosses itself (a
    bow tie drawn by hand) becomes the areas it encloses rather than an error; one
    spanning more than half the globe in longitude is taken to cross the 180th
    meridian (a small shape in the Pacific, not a band around the Earth)."""
    lons = [lon for _, lon in points]
    wraps = max(lons) - min(lons) > 180
    polygon = Polygon([(lon + 360 if wraps and lon < 0 else lon, lat) for lat, lon in points])
    return polygon if polygon.is_valid else shapely.make_valid(polygon)


def disc(lat: float, lon: float, radius_m: float) -> BaseGeometry:
    """CAP's circle; radius 0 is the point itself."""
    if radius_m <= 0:
        return point(lat, lon)
    return from_metres(Point(0, 0).buffer(radius_m, quad_segs=16), lat, lon)


def interiors_meet(a: BaseGeometry, b: BaseGeometry) -> bool:
    """The shapes share some area (or a point inside), not only a border: a CAP
    polygon drawn along a district's edge does not reach the district next door."""
    return bool(a.intersects(b)) and not bool(a.touches(b))


# GCJ-02: Krasovsky 1940 ellipsoid, and the offsets of the published algorithm.
_KRASOVSKY_A = 6_378_245.0
_KRASOVSKY_EE = 0.00669342162296594323


def _offset_lat(x: float, y: float) -> float:
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2 / 3
    ret += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2 / 3
    ret += (160.0 * math.sin(y / 12.0 * math.pi) + 320 * math.sin(y * math.pi / 30.0)) * 2 / 3
    return ret


def _offset_lon(x: float, y: float) -> float:
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2 / 3
    ret += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2 / 3
    ret += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2 / 3
    return ret


def in_mainland_china_box(lat: float, lon: float) -> bool:
    """The rough box the GCJ-02 offset applies in (outside it, coordinates are left
    as WGS 84, as every implementation does)."""
    return 0.8293 <= lat <= 55.8271 and 72.004 <= lon <= 137.8347


def wgs84_to_gcj02(lat: float, lon: float) -> tuple[float, float]:
    """(lat, lon) in WGS 84 → (lat, lon) in GCJ-02, to about a metre."""
    if not in_mainland_china_box(lat, lon):
        return lat, lon
    dlat = _offset_lat(lon - 105.0, lat - 35.0)
    dlon = _offset_lon(lon - 105.0, lat - 35.0)
    rad = math.radians(lat)
    magic = 1 - _KRASOVSKY_EE * math.sin(rad) ** 2
    sqrt_magic = math.sqrt(magic)
    dlat = (dlat * 180.0) / ((_KRASOVSKY_A * (1 - _KRASOVSKY_EE)) / (magic * sqrt_magic) * math.pi)
    dlon = (dlon * 180.0) / (_KRASOVSKY_A / sqrt_magic * math.cos(rad) * math.pi)
    return lat + dlat, lon + dlon


AMAP_MARKER = "https://uri.amap.com/marker"  # Amap's URI API: one marked point


def map_link(lat: float, lon: float, name: str) -> str:
    """A web map link marking (lat, lon) in WGS 84 with `name`: Amap's marker URI with
    the point in GCJ-02 (coordinate=gaode, its default, said outright), which opens in
    any phone's browser and, where the Amap app is installed, in the app
    (callnative=1). The link carries the point and the name only."""
    gcj_lat, gcj_lon = wgs84_to_gcj02(lat, lon)
    query = {
        "position": f"{gcj_lon:.6f},{gcj_lat:.6f}",  # lon,lat, as the API orders them
        "name": name,
        "src": "pingan",
        "coordinate": "gaode",
        "callnative": "1",
    }
    return f"{AMAP_MARKER}?{urlencode(query, safe=',', quote_via=quote)}"

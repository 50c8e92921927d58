"""Named message templates (zh and en). Playbooks refer to them by name."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import yaml

TEMPLATES_DIR = Path(__file__).resolve().parent


@cache
def load_templates(folder: Path = TEMPLATES_DIR) -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = {}
    for path in sorted(folder.glob("*.yaml")):
        found.update(yaml.safe_load(path.read_text(encoding="utf-8"))["templates"])
    return found

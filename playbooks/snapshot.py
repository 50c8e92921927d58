"""An incident keeps the playbook it opened with, as a JSON snapshot. Validating one
with pydantic is costly and every event reads many, so parsed snapshots are cached by
their text: the same text is the same (frozen) playbook."""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from playbooks.model import Playbook


@lru_cache(maxsize=512)
def _parse(text: str) -> Playbook:
    return Playbook.model_validate_json(text)


def playbook_from_snapshot(snapshot: Mapping[str, Any] | str) -> Playbook:
    """The playbook an incident snapshot holds (a decoded JSON object, or its text)."""
    if isinstance(snapshot, str):
        return _parse(snapshot)
    # Key order is kept: a playbook's levels are validated in the order written.
    return _parse(json.dumps(snapshot, ensure_ascii=False, separators=(",", ":")))


# id(playbook) -> (the playbook, kept alive so the id is not reused; its snapshot)
_SNAPSHOTS: dict[int, tuple[Playbook, dict[str, Any]]] = {}


def snapshot_of(playbook: Playbook) -> dict[str, Any]:
    """The JSON snapshot an incident opened under `playbook` stores. Playbooks are
    frozen, so each is dumped once, not once per incident a storm opens."""
    found = _SNAPSHOTS.get(id(playbook))
    if found is None or found[0] is not playbook:
        if len(_SNAPSHOTS) >= 256:  # a long-running worker sees hot reloads
            _SNAPSHOTS.clear()
        found = (playbook, playbook.model_dump(mode="json"))
        _SNAPSHOTS[id(playbook)] = found
    return found[1]

"""The playbooks in force, reloaded when their files change.

A valid edit applies to new events at once; open incidents keep the snapshot they
started with. An invalid edit changes nothing: the running version stays, and the
problem is logged and kept in `error` for dispatchers to see."""

from __future__ import annotations

import logging
from pathlib import Path

from playbooks.index import PlaybookIndex
from playbooks.loader import PlaybookError, load_playbooks

log = logging.getLogger("pingan.playbooks")

Stamp = tuple[tuple[str, int, int], ...]


def folder_stamp(folder: Path) -> Stamp:
    out = []
    for path in sorted(folder.glob("*.yaml")):
        try:
            stat = path.stat()
        except OSError:
            continue
        out.append((path.name, stat.st_mtime_ns, stat.st_size))
    return tuple(out)


class PlaybookRegistry:
    def __init__(self, folder: Path) -> None:
        """Raises PlaybookError: the system does not start on broken playbooks."""
        self.folder = folder
        self._stamp = folder_stamp(folder)
        self.index = PlaybookIndex(load_playbooks(folder).values())
        self.error: str | None = None

    def refresh(self) -> bool:
        """Reload if the files changed. True when they did (whether the new version
        was applied, or rejected and recorded in `error`)."""
        stamp = folder_stamp(self.folder)
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            playbooks = load_playbooks(self.folder)
        except PlaybookError as exc:
            self.error = str(exc)
            log.error("playbook change rejected; the running version stays:\n%s", exc)
            return True
        self.index = PlaybookIndex(playbooks.values())
        self.error = None
        log.info("playbooks reloaded: %s", self.versions())
        return True

    def versions(self) -> str:
        return ", ".join(
            f"{p.id} v{p.version}"
            for p in sorted(self.index.playbooks.values(), key=lambda p: p.id)
        )

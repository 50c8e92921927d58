"""The data folder holds full phone numbers, password hashes, session tokens, secrets
and logs with crew activity: only the account that runs pingan may read it. Folders
0700, files 0600, for what is already there and (through the umask) for what is made
later by this process and its children (the worker, the broker, SQLite's journal)."""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

PRIVATE_UMASK = 0o077


def make_private(data_dir: Path) -> None:
    os.umask(PRIVATE_UMASK)
    data_dir.mkdir(parents=True, exist_ok=True)
    for path in (data_dir, *data_dir.rglob("*")):
        with contextlib.suppress(OSError):  # vanished meanwhile, or not ours: leave it
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                continue
            wanted = 0o700 if stat.S_ISDIR(mode) else 0o600
            if stat.S_IMODE(mode) != wanted:
                path.chmod(wanted)

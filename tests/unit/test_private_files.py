"""The data folder is made private on start, including what an older version left
readable by everyone."""

from __future__ import annotations

import os
from pathlib import Path

from pingan.privacy import redact_links
from pingan.runtime.private import make_private


def test_an_open_data_folder_is_closed(tmp_path: Path) -> None:
    data = tmp_path / "var"
    (data / "sub").mkdir(parents=True)
    for name in ("pingan.db", "worker.log", "sub/x.log", "link_secret"):
        (data / name).write_text("x")
        (data / name).chmod(0o644)
    data.chmod(0o755)
    (data / "sub").chmod(0o755)
    old = os.umask(0o022)
    try:
        make_private(data)
        assert os.umask(0o022) == 0o077  # and new files will be private too
    finally:
        os.umask(old)
    assert data.stat().st_mode & 0o777 == 0o700
    assert (data / "sub").stat().st_mode & 0o777 == 0o700
    for name in ("pingan.db", "worker.log", "sub/x.log", "link_secret"):
        assert (data / name).stat().st_mode & 0o777 == 0o600


def test_crew_links_are_redacted_from_log_text() -> None:
    text = "【平安派单】任务12 请点击 http://x:8080/c/MTIudHJlZQ.iix3e6qX-w6P_DEF 接单"
    assert redact_links(text) == "【平安派单】任务12 请点击 http://x:8080/c/[link] 接单"

"""Generated credentials for the out-of-the-box start: made once, kept in the data
folder (mode 0600), printed at start so the operator can use them."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def ensure_secret(data_dir: Path, name: str) -> str:
    path = data_dir / name
    if path.exists():
        value = path.read_text(encoding="utf-8").strip()
        if value:
            return value
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(value + "\n")
    return value


def tokens_or_generated(
    configured: tuple[str, ...], data_dir: Path, name: str
) -> tuple[tuple[str, ...], bool]:
    """The configured tokens, or one generated; the flag says whether it was generated."""
    if configured:
        return configured, False
    return (ensure_secret(data_dir, name),), True

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


NAMED_TOKENS = "api_tokens"  # "name:token" lines, written by `pingan tokens add NAME`
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def named_tokens(data_dir: Path) -> tuple[str, ...]:
    """The named API credentials kept in the data folder ("name:token" each)."""
    path = data_dir / NAMED_TOKENS
    if not path.exists():
        return ()
    lines = path.read_text(encoding="utf-8").splitlines()
    return tuple(line.strip() for line in lines if ":" in line and not line.startswith("#"))


def add_named_token(data_dir: Path, name: str) -> str:
    """A new token for `name` (a person: approvals and the audit carry the name),
    appended to data_dir/api_tokens (mode 0600). Returns the token."""
    if not name or len(name) > 64 or not set(name) <= _NAME_CHARS:
        raise ValueError("name: 1-64 letters, digits, '.', '_' or '-'")
    if any(entry.split(":", 1)[0] == name for entry in named_tokens(data_dir)):
        raise ValueError(f"name: {name!r} already has a token")
    data_dir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(24)
    fd = os.open(data_dir / NAMED_TOKENS, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as out:
        out.write(f"{name}:{token}\n")
    return token

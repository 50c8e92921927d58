"""Signed crew links: one crew, one assignment, an expiry, and an HMAC over all three.
A link cannot be edited to open another assignment, and stops working when it expires."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from datetime import UTC, datetime

# A link is exactly two unpadded base64url parts joined by a dot, nothing before or
# after: the decoder must not ignore trailing text, or a signed link could carry markup.
_SHAPE = re.compile(r"[A-Za-z0-9_-]{4,200}\.[A-Za-z0-9_-]{4,200}", re.ASCII)


class LinkInvalid(ValueError):
    pass


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    """Strict: only the unpadded base64url alphabet, and the text must be the canonical
    encoding of what it decodes to (no stray bits, no trailing data)."""
    raw = base64.b64decode(
        text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4), validate=True
    )
    if _b64(raw) != text:
        raise ValueError("not canonical base64url")
    return raw


def sign_link(secret: str, assignment_id: int, crew_id: str, expires: datetime) -> str:
    body = f"{assignment_id}.{crew_id}.{int(expires.timestamp())}".encode()
    mac = hmac.new(secret.encode(), body, hashlib.sha256).digest()[:16]
    return f"{_b64(body)}.{_b64(mac)}"


def verify_link(secret: str, token: str, now: datetime) -> tuple[int, str]:
    """(assignment_id, crew_id), or LinkInvalid saying why."""
    if not _SHAPE.fullmatch(token):
        raise LinkInvalid("malformed link")
    try:
        body_part, mac_part = token.split(".")
        body, mac = _unb64(body_part), _unb64(mac_part)
    except (ValueError, TypeError, binascii.Error):
        raise LinkInvalid("malformed link") from None
    expected = hmac.new(secret.encode(), body, hashlib.sha256).digest()[:16]
    if not hmac.compare_digest(mac, expected):
        raise LinkInvalid("signature does not match")
    try:
        assignment, crew, expires = body.decode().split(".")
        expires_at = datetime.fromtimestamp(int(expires), UTC)
        assignment_id = int(assignment)
    except (ValueError, OverflowError, OSError):
        raise LinkInvalid("malformed link") from None
    if now >= expires_at:
        raise LinkInvalid("link expired")
    return assignment_id, crew


class CrewLinks:
    """Makes the signed link a crew's SMS carries."""

    VALID_FOR_H = 24

    def __init__(self, secret: str, base_url: str) -> None:
        self.secret, self.base_url = secret, base_url.rstrip("/")

    def url(self, assignment_id: int, crew_id: str, issued: datetime) -> str:
        from datetime import timedelta

        expires = issued + timedelta(hours=self.VALID_FOR_H)
        return f"{self.base_url}/c/{sign_link(self.secret, assignment_id, crew_id, expires)}"

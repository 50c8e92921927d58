"""People who log in to the console, their roles, and their passwords (scrypt, a
memory-hard KDF from the standard library). Pure apart from `create_user`."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import datetime

from sqlalchemy import select

from pingan.store import Store, record_audit
from pingan.store.schema import users

ROLES = ("viewer", "dispatcher", "supervisor", "admin")
SCRYPT = {"n": 2**14, "r": 8, "p": 1}


class UserError(ValueError):
    pass


def role_at_least(role: str, needed: str) -> bool:
    return ROLES.index(role) >= ROLES.index(needed)


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **SCRYPT)
    b64 = lambda raw: base64.b64encode(raw).decode()  # noqa: E731
    return f"scrypt${SCRYPT['n']}${SCRYPT['r']}${SCRYPT['p']}${b64(salt)}${b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if kind != "scrypt":
        return False
    got = hashlib.scrypt(
        password.encode(), salt=base64.b64decode(salt), dklen=32, n=int(n), r=int(r), p=int(p)
    )
    return hmac.compare_digest(got, base64.b64decode(digest))


def check_password_policy(password: str) -> None:
    if len(password) < 10:
        raise UserError("password: at least 10 characters")


def create_user(
    store: Store, username: str, password: str, role: str, actor: str, now: datetime
) -> None:
    if role not in ROLES:
        raise UserError(f"role: {role!r} is not one of {', '.join(ROLES)}")
    if not username.isidentifier() or len(username) > 64:
        raise UserError("username: letters, digits and _ only")
    check_password_policy(password)
    with store.transaction() as conn:
        if conn.execute(select(users.c.username).where(users.c.username == username)).first():
            raise UserError(f"username: {username!r} exists")
        conn.execute(
            users.insert().values(
                username=username, password=hash_password(password), role=role, created_at=now
            )
        )
        record_audit(conn, now, actor, "user.created", "user", username, {"role": role})

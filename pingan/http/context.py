"""What every HTTP route shares: the request context (settings, store, playbooks,
credentials), JSON responses, and who is acting. Routes import this module, and the
app module imports the routes, so there is no cycle between them."""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from pingan.http.ratelimit import AuditBudget, RateLimits
from pingan.intake.accept import GroupCommit
from pingan.settings import Settings
from pingan.store import Store
from playbooks.registry import PlaybookRegistry


@dataclass
class Context:
    settings: Settings
    store: Store
    playbooks: PlaybookRegistry
    api_tokens: tuple[str, ...]
    open311_keys: tuple[str, ...]
    limits: RateLimits = field(default_factory=lambda: RateLimits({"key": 300, "caller": 6}))
    twilio_auth_token: str = ""
    link_secret: str = ""
    audit_budget: AuditBudget = field(default_factory=AuditBudget)
    bootstrap: str = ""  # the broker's addresses, for /readyz
    # Reports from concurrent requests committed together (pingan/intake/accept.py).
    intake: GroupCommit = field(init=False)

    def __post_init__(self) -> None:
        self.intake = GroupCommit(self.store)


CONTEXT = web.AppKey("context", Context)


def ctx(request: web.Request) -> Context:
    return request.app[CONTEXT]


def json_response(data: Any, status: int = 200) -> web.Response:
    """JSON with Chinese left readable (UTF-8), not \\u-escaped."""
    return web.json_response(data, status=status, dumps=_dumps)


def _dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False)


def json_error(status: int, message: str, code: str | None = None) -> web.Response:
    """{"error": message}; a refusal a dispatcher meets in the console also names its
    `code`, whose words the console shows (pingan.vocabulary.ERRORS)."""
    return json_response({"error": message} | ({"code": code} if code else {}), status=status)


@dataclass(frozen=True)
class Credential:
    """Who a presented token is: `named` when the entry names a person ("name:token"
    or "name=token"); a bare shared token acts as "token-N" and names nobody."""

    name: str
    named: bool


def parse_credential(entry: str, n: int) -> tuple[Credential, str]:
    """One configured entry: "name:token", "name=token" or a bare token."""
    cut = min((i for i in (entry.find(":"), entry.find("=")) if i > 0), default=-1)
    if cut > 0 and entry[cut + 1 :]:
        return Credential(entry[:cut].strip(), True), entry[cut + 1 :].strip()
    return Credential(f"token-{n}", False), entry


def credential_of(presented: str, accepted: tuple[str, ...]) -> Credential | None:
    found = None
    # Compare against every token so timing says nothing about which one nearly matched.
    for n, entry in enumerate(accepted, start=1):
        credential, token = parse_credential(entry, n)
        if hmac.compare_digest(presented.encode(), token.encode()):
            found = credential
    return found


def token_name(presented: str, accepted: tuple[str, ...]) -> str | None:
    """Which configured token this is (see Credential): the name is who acts, in the
    audit and for the two-person rule."""
    found = credential_of(presented, accepted)
    return found.name if found else None


def token_ok(presented: str, accepted: tuple[str, ...]) -> bool:
    return token_name(presented, accepted) is not None


def actor_of(request: web.Request) -> str:
    return str(request.get("actor", "api"))


def acts_as_person(request: web.Request) -> bool:
    """A logged-in user or a named API credential; not the shared unnamed token."""
    return bool(request.get("named", False))


def may_see_phones(request: web.Request) -> bool:
    """Dispatchers logged in as people see callers' numbers (to call back); machines
    and viewers see them masked."""
    from pingan.users import role_at_least

    return "csrf" in request and role_at_least(str(request.get("role")), "dispatcher")

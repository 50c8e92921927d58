"""What each ledger row was for, from the dedup key its sender wrote."""

from __future__ import annotations

import pytest

from alerts.history import kind_of
from pingan.http.auth import required_role


@pytest.mark.parametrize(
    ("key", "kind"),
    [
        ("assignment:12", "crew.assignment"),
        ("assignment:12:reminder", "crew.reminder"),
        ("digest:digest:+8613900000001:1795766400.000", "staff.digest"),
        ("report:7:citizen.received", "citizen.received"),
        ("report:7:citizen.resolved", "citizen.resolved"),
        ("w3:s1024", "citizen.warning"),
        ("reply:SM0123456789abcdef0123456789abcdef", "sms.reply"),
        ("assignment:12:call", "other"),  # a kind nobody writes yet is not mistaken
        ("", "other"),
    ],
)
def test_kind_of(key: str, kind: str) -> None:
    assert kind_of(key) == kind


@pytest.mark.parametrize(
    ("method", "route", "role"),
    [
        ("GET", "/api/board", "viewer"),
        ("GET", "/api/messages", "dispatcher"),  # what was sent to whom
        ("HEAD", "/api/messages", "dispatcher"),
        ("POST", "/api/incidents/{id}/resolve", "dispatcher"),
        ("POST", "/api/incidents/{id}/release", "supervisor"),
    ],
)
def test_required_role(method: str, route: str, role: str) -> None:
    assert required_role(method, route) == role

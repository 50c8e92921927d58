"""The crew-link decoder: the whole path segment must be exactly the signed value."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pingan.links import LinkInvalid, sign_link, verify_link

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
SECRET = "link-secret"
GOOD = sign_link(SECRET, 12, "tree-near", NOW + timedelta(hours=1))


def test_a_signed_link_opens_its_assignment() -> None:
    assert verify_link(SECRET, GOOD, NOW) == (12, "tree-near")


@pytest.mark.parametrize(
    "tampered",
    [
        GOOD + "==",
        GOOD + '=="><img src=x onerror=alert(1)>',
        GOOD + "==<b>",
        GOOD + "\n",
        " " + GOOD,
        GOOD.replace(".", ".."),
        GOOD + ".x",
        GOOD.replace(".", "=."),  # padding inside
        GOOD.replace("-", "+").replace("_", "/") if ("-" in GOOD or "_" in GOOD) else GOOD + "+",
        GOOD[:-1],
        "",
        ".",
        "a" * 5000,
    ],
)
def test_anything_but_the_exact_signed_value_is_refused(tampered: str) -> None:
    with pytest.raises(LinkInvalid):
        verify_link(SECRET, tampered, NOW)


def test_a_non_canonical_last_character_is_refused() -> None:
    """Base64 lets the unused low bits of the last character vary; a strict decoder
    accepts one spelling only."""
    body, mac = GOOD.split(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    variants = [mac[:-1] + c for c in alphabet if c != mac[-1]]
    accepted = []
    for variant in variants:
        try:
            verify_link(SECRET, f"{body}.{variant}", NOW)
            accepted.append(variant)
        except LinkInvalid:
            pass
    assert accepted == []


def test_expired_and_forged_links_are_refused() -> None:
    with pytest.raises(LinkInvalid, match="expired"):
        verify_link(SECRET, GOOD, NOW + timedelta(hours=2))
    with pytest.raises(LinkInvalid, match="signature"):
        verify_link("other", GOOD, NOW)

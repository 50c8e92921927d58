"""What may appear in logs and API answers about a citizen."""

from __future__ import annotations


def mask_phone(phone: str) -> str:
    """+8613812345678 -> +86138****5678: enough to tell calls apart, not to call back."""
    digits = phone.strip()
    if len(digits) <= 7:
        return "*" * len(digits)
    return f"{digits[:-8]}****{digits[-4:]}"

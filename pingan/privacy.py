"""What may appear in logs and API answers about a citizen."""

from __future__ import annotations

import re


def mask_phone(phone: str) -> str:
    """+8613812345678 -> +86138****5678: enough to tell calls apart, not to call back."""
    digits = phone.strip()
    if len(digits) <= 7:
        return "*" * len(digits)
    return f"{digits[:-8]}****{digits[-4:]}"


_PHONE_LIKE = re.compile(r"\+?\d[\d -]{5,}\d")


def mask_phones_in_text(text: str) -> str:
    """Free text (a citizen's description) may carry a phone number: mask any run of
    seven or more digits before the text goes to a log."""
    return _PHONE_LIKE.sub(lambda m: mask_phone(re.sub(r"[ -]", "", m.group())), text)

"""SMS arithmetic and phone numbers. Pure.

A text that fits GSM-7 costs one segment per 160 characters (153 per part when split;
^{}\\[~]|€ count double); anything else (Chinese) is UCS-2: 70 characters, 67 per part.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = set("^{}\\[~]|€")


@dataclass(frozen=True)
class SmsSize:
    encoding: str  # GSM-7 or UCS-2
    units: int  # characters as the network counts them
    segments: int


def sms_size(text: str) -> SmsSize:
    if all(ch in GSM7 or ch in GSM7_EXTENDED for ch in text):
        units = sum(2 if ch in GSM7_EXTENDED else 1 for ch in text)
        single, part, encoding = 160, 153, "GSM-7"
    else:
        # Characters outside the Basic Multilingual Plane take two UCS-2 units.
        units = sum(2 if ord(ch) > 0xFFFF else 1 for ch in text)
        single, part, encoding = 70, 67, "UCS-2"
    segments = 1 if units <= single else math.ceil(units / part)
    return SmsSize(encoding, units, segments)


def render(template: str, values: dict[str, str]) -> str:
    """{name} placeholders; a missing value is an error, not an empty gap in a warning."""
    missing = [name for name in re.findall(r"\{(\w+)\}", template) if name not in values]
    if missing:
        raise KeyError(f"template needs {', '.join(sorted(set(missing)))}")
    return template.format(**values)

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


# ---- what the public may read ---------------------------------------------------------
# Citizens type their own details into a report ("我家在人民路12号院3号楼2单元501，电话
# 13812345678，身份证410…"). The public Open311 answer keeps what a GeoReport client
# needs and none of that; logged-in dispatchers read the full text.

_D = "[0-9０-９]"
# 身份证: 17 digits and a check digit (X allowed), or the old 15 digits.
_ID_NUMBER = re.compile(rf"(?<![0-9０-９])(?:{_D}{{17}}[0-9０-９Xx]|{_D}{{15}})(?![0-9０-９])")
# Phone numbers: mobile or landline, with +86/0086/86, spaces, dashes, dots, or
# invisible characters inside; any run of 7 or more digits so written.
_SEPARATORS = r"[\s\-.·()（）\u200b\u200c\u200d\u2060\ufeff]"
_PHONE = re.compile(rf"(?<![0-9０-９])\+?{_D}(?:{_SEPARATORS}*{_D}){{6,}}(?![0-9０-９])")
# House-level address parts: 12号, 12号院, 3号楼, 3栋, 2单元, 501室, 5层, 3-2-501
# (not a date such as 2026-12-01, not 地铁3号线).
_HOUSE = re.compile(
    rf"(?<![0-9０-９])(?:{_D}{{1,3}}(?:[-－]{_D}+){{2,3}}(?:号|室)?|{_D}+[-－]{_D}+(?:号|室)"
    rf"|(?:{_D}+|[一二三四五六七八九十百]+)\s*(?:号楼|号院|号(?!线)|栋|幢|单元|室|户|层))"
    rf"(?:\s*(?:{_D}+|[一二三四五六七八九十百]+)\s*(?:号楼|号院|号(?!线)|栋|幢|单元|室|户|层|楼))*"
)
_DATE = re.compile(r"[0-9]{4}[-./][0-9]{1,2}[-./][0-9]{1,2}")
ID_MASK, PHONE_MASK, HOUSE_MASK = "[证件号已隐去]", "[电话已隐去]", "[门牌已隐去]"


def _phone_or_date(match: re.Match[str]) -> str:
    return match.group() if _DATE.fullmatch(match.group()) else PHONE_MASK


def mask_personal(text: str) -> str:
    """Free text for the public: ID numbers, phone numbers and house-level address
    parts replaced by a note saying what was removed."""
    text = _ID_NUMBER.sub(ID_MASK, text)
    text = _PHONE.sub(_phone_or_date, text)
    return _HOUSE.sub(HOUSE_MASK, text)


_CREW_LINK = re.compile(r"/c/[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


def redact_links(text: str) -> str:
    """A crew link is a credential: logs keep that one was sent, not the link."""
    return _CREW_LINK.sub("/c/[link]", text)

"""One spelling per phone number: E.164 (+8613512345678), whatever the caller typed
(8613…, +86 135 …, 135-1234-5678, a zero-width space inside, full-width digits). Every
entrance normalises, so rate limits, duplicate folding, satisfaction replies and
call-backs see one caller."""

from __future__ import annotations

import re

import phonenumbers

DEFAULT_REGION = "CN"
# Invisible characters a copy-paste (or a limit dodger) leaves inside a number.
_INVISIBLE = re.compile("[\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")


class PhoneInvalid(ValueError):
    pass


def e164(raw: str, region: str = DEFAULT_REGION) -> str:
    """The number in E.164, or PhoneInvalid saying why."""
    text = _INVISIBLE.sub("", raw).strip()
    if not text or len(text) > 40:
        raise PhoneInvalid("phone: expected a phone number")
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise PhoneInvalid(f"phone: {text[:40]!r} is not a phone number") from None
    if not phonenumbers.is_possible_number(number):
        raise PhoneInvalid(f"phone: {text[:40]!r} is not a possible phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


_TEXTABLE = {phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE}


def mobile_e164(raw: str, region: str = DEFAULT_REGION) -> str:
    """A number that can take an SMS (a subscriber's), in E.164; anything else (a
    landline, a number no plan allocates, not a number) is PhoneInvalid."""
    try:
        number = phonenumbers.parse(e164(raw, region))
    except PhoneInvalid:
        number = None
    if (
        number is None
        or not phonenumbers.is_valid_number(number)
        or phonenumbers.number_type(number) not in _TEXTABLE
    ):
        shown = _INVISIBLE.sub("", raw).strip()[:40]
        raise PhoneInvalid(f"phone: {shown!r} is not a mobile number (11 digits, or +country…)")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def e164_or_raw(raw: str, region: str = DEFAULT_REGION) -> str:
    """For numbers a provider hands us (Twilio's From): E.164 when it parses, else as
    given (a short code, an alphanumeric sender)."""
    try:
        return e164(raw, region)
    except PhoneInvalid:
        return _INVISIBLE.sub("", raw).strip()

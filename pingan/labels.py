"""What a dispatcher reads instead of a code: an incident's category, district and
level in Chinese and English. The words come from pingan.vocabulary; districts from
the city. Unknown codes come back as themselves."""

from __future__ import annotations

from pingan.city import load_city
from pingan.vocabulary import Label, category_label, level_label


def district_label(code: str | None) -> Label | None:
    if not code:
        return None
    district = load_city().districts.get(code)
    return {"zh": district.zh, "en": district.en} if district else {"zh": code, "en": code}


def incident_labels(category: str, district: str | None, level: str) -> dict[str, Label | None]:
    return {
        "category": category_label(category),
        "district": district_label(district),
        "level": level_label(level),
    }

import pytest

from pingan.intake.reports import ReportInvalid, validate_report

CODES = {"fallen_tree", "waterlogging"}
GOOD = {"service_code": "fallen_tree", "lat": "33.57", "long": "114.01", "description": "树倒了"}

INVALID = [
    ({**GOOD, "service_code": ""}, "service_code: required"),
    ({**GOOD, "service_code": "ufo"}, "service_code: unknown service 'ufo'"),
    ({"service_code": "fallen_tree", "description": "x"}, "location: lat/long or address_string"),
    ({**GOOD, "long": ""}, "lat/long: both are needed"),
    ({**GOOD, "lat": "north"}, "lat: 'north' is not a number"),
    ({**GOOD, "lat": "91"}, "lat: 91.0 is outside -90..90"),
    ({**GOOD, "long": "nan"}, "long: nan is outside"),
    ({**GOOD, "long": "-181"}, "long: -181.0 is outside"),
    ({**GOOD, "description": "树" * 4001}, "description: longer than 4000"),
    ({**GOOD, "media_url": "javascript:alert(1)"}, "media_url: must be an http"),
    ({**GOOD, "first_name": "x" * 501}, "first_name: longer than 500"),
]


@pytest.mark.parametrize(("fields", "message"), INVALID)
def test_invalid_reports_name_the_field(fields: dict[str, str], message: str) -> None:
    with pytest.raises(ReportInvalid) as caught:
        validate_report(fields, CODES)
    assert message in caught.value.description
    assert caught.value.code == 400


def test_valid_report_keeps_contact_and_location() -> None:
    draft = validate_report(
        {**GOOD, "phone": " +8613800000000 ", "email": "", "address_string": "人民路"}, CODES
    )
    assert (draft.lat, draft.lon, draft.address) == (33.57, 114.01, "人民路")
    assert draft.contact == {"phone": "+8613800000000"}


def test_address_alone_is_a_location() -> None:
    draft = validate_report(
        {"service_code": "waterlogging", "address_string": "召陵区 滨河路"}, CODES
    )
    assert draft.lat is None and draft.address == "召陵区 滨河路"

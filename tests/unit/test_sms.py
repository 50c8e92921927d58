import pytest

from alerts.citizen_warnings import WarningRefused, check_approver, draft_texts, needs_second_person
from alerts.sms import render, sms_size


@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments"),
    [
        ("a" * 160, "GSM-7", 160, 1),
        ("a" * 161, "GSM-7", 161, 2),
        ("a" * 306, "GSM-7", 306, 2),
        ("a" * 307, "GSM-7", 307, 3),
        ("[]" * 80, "GSM-7", 320, 3),  # extension characters count double
        ("雪" * 70, "UCS-2", 70, 1),
        ("雪" * 71, "UCS-2", 71, 2),
        ("雪" * 134, "UCS-2", 134, 2),
        ("雪" * 135, "UCS-2", 135, 3),
        ("Snow 暴雪", "UCS-2", 7, 1),  # one Chinese character makes it all UCS-2
        ("😀" * 35, "UCS-2", 70, 1),  # outside the BMP: two units each
    ],
)
def test_sms_size(text: str, encoding: str, units: int, segments: int) -> None:
    size = sms_size(text)
    assert (size.encoding, size.units, size.segments) == (encoding, units, segments)


def test_render_refuses_a_missing_value() -> None:
    with pytest.raises(KeyError, match="district"):
        render("{district}暴雪预警", {"hotline": "12345"})


def test_warning_texts_fit_and_are_counted() -> None:
    draft = draft_texts("blizzard-red", ["yuanhui", "yancheng"])
    assert draft.text_zh.startswith("【漯河城管】源汇区、郾城区暴雪红色预警")
    assert "12345" in draft.text_zh and draft.encoding_zh == "UCS-2"
    assert draft.segments_zh == 1 and len(draft.text_zh) <= 70  # one UCS-2 segment
    assert draft.segments_en == 2  # English: 153 GSM-7 characters per part
    assert "Yuanhui District, Yancheng District" in draft.text_en


@pytest.mark.parametrize(
    ("recipients", "approval", "drafter", "approver", "refused"),
    [
        (5000, "required", "alice", "alice", True),
        (5000, "required", "alice", "bob", False),
        (1000, "required", "alice", "alice", False),
        (5000, "auto", "alice", "alice", False),
    ],
)
def test_two_person_rule(recipients, approval, drafter, approver, refused) -> None:  # type: ignore[no-untyped-def]
    assert needs_second_person(recipients, approval) == (recipients > 1000 and approval != "auto")
    if refused:
        with pytest.raises(WarningRefused, match="two-person rule"):
            check_approver(drafter, approver, recipients, approval)
    else:
        check_approver(drafter, approver, recipients, approval)

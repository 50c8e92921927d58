from dataclasses import replace
from pathlib import Path

import pytest

from alerts.render import CrewTask, crew_assignment_text
from pingan.privacy import mask_phone, mask_phones_in_text
from pingan.settings import Settings, SettingsError, load_settings


@pytest.mark.parametrize(
    ("phone", "masked"),
    [("+8613812345678", "+86138****5678"), ("13812345678", "138****5678"), ("12345", "*****")],
)
def test_mask_phone(phone: str, masked: str) -> None:
    assert mask_phone(phone) == masked


def test_settings_defaults_work_out_of_the_box(tmp_path: Path) -> None:
    settings = load_settings({}, tmp_path / "absent.toml")
    assert settings == Settings()
    assert settings.effective_database_url.endswith("var/pingan.db")
    assert settings.http_port == 8080 and settings.kafka_url == ""


def test_env_overrides_file(tmp_path: Path) -> None:
    config = tmp_path / "pingan.toml"
    config.write_text('http_port = 9000\napi_tokens = ["a", "b"]\nlog_level = "DEBUG"\n')
    settings = load_settings({"PINGAN_HTTP_PORT": "9100"}, config)
    assert settings.http_port == 9100
    assert settings.api_tokens == ("a", "b")
    assert settings.log_level == "DEBUG"
    env = load_settings({"PINGAN_API_TOKENS": "x, y,"}, config)
    assert env.api_tokens == ("x", "y")


@pytest.mark.parametrize(
    ("environ", "content", "message"),
    [
        (
            {"PINGAN_HTTP_PORT": "eighty"},
            "",
            "PINGAN_HTTP_PORT: http_port = 'eighty' is not a valid int",
        ),
        ({}, "http_prot = 1\n", "unknown setting 'http_prot'"),
        ({}, "http_port = \n", "pingan.toml"),
    ],
)
def test_bad_settings_are_named(tmp_path: Path, environ, content, message) -> None:
    config = tmp_path / "pingan.toml"
    config.write_text(content)
    with pytest.raises(SettingsError, match=message):
        load_settings(environ, config)


def test_crew_sms_says_what_where_and_deadline() -> None:
    task = CrewTask(12, "fallen_tree", "routine", "人民路附近", 10, description="树倒了")
    text = crew_assignment_text(replace(task, checklist=("设置警示区域 Mark off the area",)))
    assert text.splitlines()[0] == "【平安派单】任务12：倒伏树木（一般），人民路附近。"
    assert "请10分钟内确认" in text and "要点：设置警示区域\n" in text


@pytest.mark.parametrize(
    ("text", "logged"),
    [
        ("树倒了，请回电13812345678", "树倒了，请回电138****5678"),
        ("call +86 138 1234 5678 now", "call +86138****5678 now"),
        ("人民路12号", "人民路12号"),
    ],
)
def test_phone_numbers_in_free_text_are_masked(text: str, logged: str) -> None:
    assert mask_phones_in_text(text) == logged


def test_incident_labels_for_every_kind_of_category() -> None:
    from pingan.labels import incident_labels
    from pingan.vocabulary import METRICS

    assert incident_labels("fallen_tree", "yuanhui", "routine") == {
        "category": {"zh": "倒伏树木", "en": "Fallen tree"},
        "district": {"zh": "源汇区", "en": "Yuanhui District"},
        "level": {"zh": "一般", "en": "routine"},
    }
    assert incident_labels("road_icing", None, "orange")["category"] == {
        "zh": "道路结冰预警",
        "en": "Road icing warning",
    }
    assert incident_labels("road_icing", None, "orange")["district"] is None
    for metric in METRICS:  # every threshold a playbook can name has words
        assert incident_labels(metric, None, "blue")["category"]["zh"] != metric
    # Unknown codes stay readable as themselves rather than vanish.
    assert incident_labels("tick", "mars", "x") == {
        "category": {"zh": "tick", "en": "tick"},
        "district": {"zh": "mars", "en": "mars"},
        "level": {"zh": "x", "en": "x"},
    }


def test_crew_text_names_a_warning_incident_in_chinese() -> None:
    """An incident opened by a 暴雪 warning reads 暴雪预警 on a crew's phone, not the
    English key; every category word comes from the one vocabulary."""
    from pingan.vocabulary import CATEGORIES, WARNING_EVENTS

    text = crew_assignment_text(CrewTask(12, "blizzard", "orange", "源汇区全区", 15))
    assert text.startswith("【平安派单】任务12：暴雪橙色预警，源汇区全区。")
    for code, (zh, _) in CATEGORIES.items():
        assert zh in crew_assignment_text(CrewTask(1, code, "routine", "x", 15))
    for code, zh in WARNING_EVENTS.items():
        assert f"{zh}黄色预警" in crew_assignment_text(CrewTask(1, code, "yellow", "x", 15))


def test_crew_text_lists_the_playbooks_priority_places_in_chinese() -> None:
    task = CrewTask(7, "snow_ice", "routine", "沙澧大桥", 10, targets=("bridge", "culvert"))
    assert "优先处置：桥梁、涵洞" in crew_assignment_text(task)


def test_a_crews_segments_go_in_the_playbooks_priority_order() -> None:
    from alerts.render import segments_in_priority

    mine = (("人民路", "main_road"), ("小巷", "back_street"), ("桥", "bridge"), ("洞", "culvert"))
    assert segments_in_priority(mine, ("bridge", "culvert", "main_road")) == [
        ("桥", "bridge"),
        ("洞", "culvert"),
        ("人民路", "main_road"),
        ("小巷", "back_street"),
    ]
    # A playbook that names a culvert first has it first; one with no road targets
    # falls back to the standing order: bridges and culverts, then main roads.
    assert segments_in_priority(mine, ("culvert",))[0] == ("洞", "culvert")
    assert [k for _, k in segments_in_priority(mine, ("school_gate",))] == [
        "bridge",
        "culvert",
        "main_road",
        "back_street",
    ]


def test_every_target_a_city_may_name_has_words() -> None:
    from pingan.city import load_city
    from pingan.vocabulary import TARGETS

    assert set(load_city().targets) <= set(TARGETS)

"""Playbook errors a duty officer can act on: file, line, column, field path and what
was expected, for a corpus of broken files; and a loader that never crashes."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from playbooks.loader import PlaybookError, load_playbook_files, parse_playbook
from playbooks.model import Playbook
from tests.conftest import PLAYBOOKS_DIR

BROKEN = Path(__file__).parent.parent / "data" / "broken-playbooks"
EXPECTED: dict[str, list[str]] = {}
for line in (BROKEN / "expected.txt").read_text(encoding="utf-8").splitlines():
    EXPECTED.setdefault(line.split(":", 1)[0], []).append(line)
VALID_TEXT = (PLAYBOOKS_DIR / "fallen-trees.yaml").read_text(encoding="utf-8")


def test_the_corpus_has_at_least_15_distinct_broken_files() -> None:
    files = sorted(p.name for p in BROKEN.glob("*.yaml"))
    assert len(files) >= 15
    assert sorted(EXPECTED) == files  # every file has its expected problems


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_broken_file_gets_line_column_path_and_message(name: str) -> None:
    with pytest.raises(PlaybookError) as caught:
        load_playbook_files([BROKEN / name])
    got = [str(p).removeprefix(f"{BROKEN}/") for p in caught.value.problems]
    assert got == EXPECTED[name]
    for problem in caught.value.problems:
        assert problem.line is not None and problem.column is not None


def test_the_bureau_playbooks_are_valid() -> None:
    found = load_playbook_files(sorted(PLAYBOOKS_DIR.glob("*.yaml")))
    assert len(found) == 6


def test_duplicate_ids_across_files_name_both(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(VALID_TEXT)
    (tmp_path / "b.yaml").write_text(
        VALID_TEXT.replace("category: fallen_tree", "category: fallen_branch")
    )
    with pytest.raises(PlaybookError) as caught:
        load_playbook_files([tmp_path / "a.yaml", tmp_path / "b.yaml"])
    [problem] = caught.value.problems
    assert problem.file.endswith("b.yaml") and problem.path == "id"
    assert "duplicate playbook id 'fallen-trees' (also in" in problem.message
    assert problem.line == VALID_TEXT.splitlines().index("id: fallen-trees") + 1


def test_one_report_category_one_playbook(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(VALID_TEXT)
    (tmp_path / "b.yaml").write_text(VALID_TEXT.replace("id: fallen-trees", "id: trees-2"))
    with pytest.raises(
        PlaybookError, match="category 'fallen_tree' is already handled by playbook 'fallen-trees'"
    ):
        load_playbook_files([tmp_path / "a.yaml", tmp_path / "b.yaml"])


def test_all_problems_of_all_files_at_once(tmp_path: Path) -> None:
    paths = [
        BROKEN / "unknown-key.yaml",
        BROKEN / "wrong-type-version.yaml",
        PLAYBOOKS_DIR / "snow-removal.yaml",
    ]
    with pytest.raises(PlaybookError) as caught:
        load_playbook_files(paths)
    assert {Path(p.file).name for p in caught.value.problems} == {
        "unknown-key.yaml",
        "wrong-type-version.yaml",
    }


# ---- the loader never crashes and always names the problem ----------------------


def _assert_named(text: str) -> None:
    try:
        parsed = parse_playbook(text, "fuzz.yaml")
    except PlaybookError as exc:
        assert exc.problems
        for problem in exc.problems:
            assert problem.file == "fuzz.yaml"
            assert problem.message.strip()
        return
    assert isinstance(parsed, Playbook)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=400))
def test_arbitrary_text_never_crashes(text: str) -> None:
    _assert_named(text)


yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "id",
                    "version",
                    "name",
                    "kind",
                    "levels",
                    "triggers",
                    "dispatch",
                    "skill",
                    "crews",
                    "zh",
                    "en",
                    "x",
                ]
            ),
            children,
            max_size=5,
        )
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(yaml_values)
def test_arbitrary_yaml_never_crashes(value: object) -> None:
    _assert_named(yaml.safe_dump(value, allow_unicode=True))


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_a_mutated_valid_playbook_names_the_line(data: st.DataObject) -> None:
    """Replace one value of a valid playbook with junk: the problem, if any, points at
    a line of the file."""
    lines = VALID_TEXT.splitlines()
    candidates = [
        i
        for i, line in enumerate(lines)
        if ": " in line and not line.lstrip().startswith(("#", "-", "{"))
    ]
    i = data.draw(st.sampled_from(candidates))
    junk = data.draw(st.sampled_from(["-1", "[]", "{}", "null", "'x'", "9999999", "purple"]))
    key = lines[i].split(": ", 1)[0]
    mutated = "\n".join([*lines[:i], f"{key}: {junk}", *lines[i + 1 :]])
    try:
        parse_playbook(mutated, "m.yaml")
    except PlaybookError as exc:
        assert all(p.line is not None and 1 <= p.line <= len(lines) for p in exc.problems)

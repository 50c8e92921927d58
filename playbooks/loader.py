"""Reading playbook files into models, with errors a duty officer can act on."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import ValidationError

from playbooks.model import Playbook


@dataclass(frozen=True)
class PlaybookProblem:
    file: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.message}"


class PlaybookError(ValueError):
    def __init__(self, problems: list[PlaybookProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def parse_playbook(text: str, file: str) -> Playbook:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise PlaybookError([PlaybookProblem(file, f"{where}not valid YAML ({problem})")]) from None
    if not isinstance(data, dict):
        raise PlaybookError([PlaybookProblem(file, "a playbook must be a mapping of keys")])
    try:
        return Playbook.model_validate(data)
    except ValidationError as exc:
        problems = [
            PlaybookProblem(
                file, f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}"
            )
            for err in exc.errors()
        ]
        raise PlaybookError(problems) from None


def load_playbooks(folder: Path) -> dict[str, Playbook]:
    """Every *.yaml in `folder`, by id. All problems of all files are reported at once."""
    found: dict[str, Playbook] = {}
    problems: list[PlaybookProblem] = []
    for path in sorted(folder.glob("*.yaml")):
        try:
            playbook = parse_playbook(path.read_text(encoding="utf-8"), str(path))
        except PlaybookError as exc:
            problems.extend(exc.problems)
            continue
        if playbook.id in found:
            problems.append(PlaybookProblem(str(path), f"duplicate playbook id {playbook.id!r}"))
            continue
        found[playbook.id] = playbook
    if problems:
        raise PlaybookError(problems)
    return found

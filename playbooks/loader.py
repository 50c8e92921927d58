"""Reading playbook files, with errors a duty officer can act on.

Every problem names the file, line and column, the field path and what was expected:

    playbooks/snow-removal.yaml:23:7: levels.yellow.dispach: unknown key; did you mean 'dispatch'?

Checks beyond the shape: duplicate keys, duplicate ids across files, names that the
city or the template list does not know (skills, equipment, targets, districts,
templates), and two playbooks claiming the same report category.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from pingan.city import City, load_city
from playbooks.model import Playbook, ReportTrigger
from playbooks.templates import load_templates

Path_ = tuple[str | int, ...]
MAX_FILE_BYTES = 256 * 1024


@dataclass(frozen=True)
class PlaybookProblem:
    file: str
    line: int | None
    column: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}" if self.line else self.file
        return f"{where}: {self.path + ': ' if self.path else ''}{self.message}"


class PlaybookError(ValueError):
    def __init__(self, problems: list[PlaybookProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass
class _Positions:
    """Where each path of a YAML document starts (1-based line and column)."""

    values: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    duplicates: list[tuple[Path_, tuple[int, int]]] = field(default_factory=list)

    def of(self, path: Path_, key: bool = False) -> tuple[int, int]:
        """The closest known position: the path itself, else its nearest parent."""
        for n in range(len(path), -1, -1):
            table = self.keys if key and n == len(path) else self.values
            if path[:n] in table:
                return table[path[:n]]
        return (1, 1)


def _mark(node: yaml.Node) -> tuple[int, int]:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


def _walk(node: yaml.Node, path: Path_, out: _Positions) -> None:
    out.values[path] = _mark(node)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in seen:
                out.duplicates.append(((*path, key), _mark(key_node)))
            seen.add(key)
            out.keys[(*path, key)] = _mark(key_node)
            _walk(value_node, (*path, key), out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, (*path, i), out)


def _dotted(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _real_path(loc: Sequence[str | int], data: Any) -> Path_:
    """Pydantic locations include union tags ('warning', 'threshold'); keep only the
    parts that exist in the document, so the path is what the author wrote."""
    path: list[str | int] = []
    current = data
    for part in loc:
        present = (isinstance(current, Mapping) and part in current) or (
            isinstance(current, list) and isinstance(part, int) and part < len(current)
        )
        if present:
            current = current[part]  # type: ignore[index]
            path.append(part)
        elif isinstance(current, Mapping | list):
            # A tag, or a key that is missing: keep the missing key, drop a tag.
            if not isinstance(part, int) and not _is_union_tag(part):
                path.append(part)
                current = None
        else:
            path.append(part)
            current = None
    return tuple(path)


def _is_union_tag(part: str) -> bool:
    return part in ("warning", "threshold", "report") or part.startswith("function-")


def _item_model(annotation: Any, value: Any) -> Any:
    """Unwrap tuple[...], dict[..., X], X | None and tagged unions to a model class."""
    origin = typing.get_origin(annotation)
    args = [a for a in typing.get_args(annotation) if a is not type(None) and a is not Ellipsis]
    if origin is typing.Annotated:
        return _item_model(args[0], value)
    if origin in (tuple, list):
        return _item_model(args[0], value[0] if isinstance(value, list) and value else None)
    if origin is dict:
        inner = args[1]
        first = next(iter(value.values()), None) if isinstance(value, Mapping) else None
        return _DictOf(_item_model(inner, first))
    if origin in (typing.Union, types.UnionType):
        models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
        kind = value.get("kind") if isinstance(value, Mapping) else None
        for candidate in models:
            tag = candidate.model_fields.get("kind")
            if tag is not None and kind in typing.get_args(tag.annotation):
                return candidate
        return models[0] if len(models) == 1 else None
    return annotation


class _DictOf:
    def __init__(self, inner: Any) -> None:
        self.inner = inner


def _fields_for(path: Path_, data: Any) -> list[str]:
    model: Any = Playbook
    current = data
    for part in path:
        if isinstance(model, _DictOf):
            model = model.inner
            current = current.get(part) if isinstance(current, Mapping) else None
            continue
        if isinstance(part, int):
            current = current[part] if isinstance(current, list) and part < len(current) else None
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return []
        info = model.model_fields.get(str(part))
        current = current.get(part) if isinstance(current, Mapping) else None
        model = _item_model(info.annotation, current) if info else None
        if isinstance(model, type) and issubclass(model, BaseModel):
            continue
        if isinstance(model, _DictOf):
            continue
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    return []


def _message(err: Mapping[str, Any], path: Path_, data: Any) -> str:
    kind, msg = err["type"], err["msg"]
    if kind == "extra_forbidden":
        key = str(path[-1])
        allowed = _fields_for(path[:-1], data)
        close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
        hint = (
            f"; did you mean {close[0]!r}?"
            if close
            else (f"; expected one of: {', '.join(allowed)}" if allowed else "")
        )
        return f"unknown key{hint}"
    if kind == "missing":
        return "required field is missing"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        return "'kind' must be one of: warning, threshold, report"
    msg = msg.removeprefix("Value error, ")
    msg = {
        "int_parsing": "expected a whole number",
        "int_type": "expected a whole number",
        "float_parsing": "expected a number",
        "float_type": "expected a number",
        "string_type": "expected text",
        "bool_parsing": "expected true or false",
        "dict_type": "expected a mapping of keys",
        "tuple_type": "expected a list",
        "list_type": "expected a list",
    }.get(kind, msg.replace("Input should be ", "expected "))
    got = err.get("input")
    if not isinstance(got, dict | list) and got is not None and kind not in ("value_error",):
        return f"{msg} (got {got!r})"
    return msg


def parse_playbook(text: str, file: str) -> Playbook:
    """One file's text to a Playbook, or PlaybookError listing every problem."""
    return _parse(text, file)[0]


def _parse(text: str, file: str) -> tuple[Playbook, _Positions]:
    if len(text.encode("utf-8", errors="replace")) > MAX_FILE_BYTES:
        raise PlaybookError([PlaybookProblem(file, None, None, "", "larger than 256 KB")])
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        context = getattr(exc, "context", None)
        detail = f"{context}, {problem}" if context else problem
        raise PlaybookError(
            [
                PlaybookProblem(
                    file,
                    mark.line + 1 if mark else None,
                    mark.column + 1 if mark else None,
                    "",
                    f"not valid YAML: {detail} (check the indentation and colons here)",
                )
            ]
        ) from None
    except (ValueError, RecursionError) as exc:  # e.g. odd bytes, absurd nesting
        raise PlaybookError(
            [PlaybookProblem(file, None, None, "", f"cannot read: {exc}")]
        ) from None
    if node is None or not isinstance(data, dict):
        raise PlaybookError(
            [
                PlaybookProblem(
                    file, 1, 1, "", "a playbook must be a mapping of keys (id, version, name, …)"
                )
            ]
        )
    positions = _Positions()
    _walk(node, (), positions)
    problems = [
        PlaybookProblem(file, line, col, _dotted(path), "duplicate key (the later one would win)")
        for path, (line, col) in positions.duplicates
    ]
    try:
        playbook = Playbook.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            raised = (err.get("ctx") or {}).get("error")
            extra = getattr(raised, "path", ())
            path = _real_path((*err["loc"], *extra), data)
            line, col = positions.of(path, key=err["type"] == "extra_forbidden")
            problems.append(
                PlaybookProblem(file, line, col, _dotted(path), _message(err, path, data))
            )
        raise PlaybookError(problems) from None
    if problems:
        raise PlaybookError(problems)
    return playbook, positions


def check_names(
    playbook: Playbook, file: str, positions: _Positions, city: City, templates: Iterable[str]
) -> list[PlaybookProblem]:
    """Names the city and the template list must know."""
    known_templates = set(templates)
    problems: list[PlaybookProblem] = []

    def unknown(path: Path_, what: str, value: str, known: Iterable[str]) -> None:
        close = difflib.get_close_matches(value, list(known), n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(sorted(known))}"
        line, col = positions.of(path)
        problems.append(
            PlaybookProblem(file, line, col, _dotted(path), f"unknown {what} {value!r}{hint}")
        )

    for level, actions in playbook.levels.items():
        for i, action in enumerate(actions.dispatch):
            base: Path_ = ("levels", level, "dispatch", i)
            if action.skill not in city.skills:
                unknown((*base, "skill"), "skill", action.skill, city.skills)
            for j, item in enumerate(action.equipment):
                if item not in city.equipment:
                    unknown((*base, "equipment", j), "equipment", item, city.equipment)
            for j, target in enumerate(action.targets):
                if target not in city.targets:
                    unknown((*base, "targets", j), "target", target, city.targets)
        for i, notice in enumerate(actions.notify_citizens):
            if notice.template not in known_templates:
                unknown(
                    ("levels", level, "notify_citizens", i, "template"),
                    "template",
                    notice.template,
                    known_templates,
                )
    for i, district in enumerate(playbook.districts):
        if district not in city.districts:
            unknown(("districts", i), "district", district, city.districts)
    return problems


def load_playbook_files(
    paths: Sequence[Path], city: City | None = None, templates: Iterable[str] | None = None
) -> dict[str, Playbook]:
    """Parse and check files together; all problems of all files are reported at once."""
    city = city or load_city()
    template_names = list(templates if templates is not None else load_templates())
    found: dict[str, Playbook] = {}
    where: dict[str, str] = {}
    categories: dict[str, str] = {}
    problems: list[PlaybookProblem] = []
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(PlaybookProblem(str(path), None, None, "", f"cannot read: {exc}"))
            continue
        try:
            playbook, positions = _parse(text, str(path))
        except PlaybookError as exc:
            problems.extend(exc.problems)
            continue
        problems.extend(check_names(playbook, str(path), positions, city, template_names))
        if playbook.id in found:
            line, col = positions.of(("id",))
            problems.append(
                PlaybookProblem(
                    str(path),
                    line,
                    col,
                    "id",
                    f"duplicate playbook id {playbook.id!r} (also in {where[playbook.id]})",
                )
            )
            continue
        for i, trigger in enumerate(playbook.triggers):
            if isinstance(trigger, ReportTrigger):
                other = categories.get(trigger.category)
                if other and other != playbook.id:
                    line, col = positions.of(("triggers", i, "category"))
                    problems.append(
                        PlaybookProblem(
                            str(path),
                            line,
                            col,
                            f"triggers[{i}].category",
                            f"report category {trigger.category!r} is already handled by "
                            f"playbook {other!r}; one category, one playbook",
                        )
                    )
                categories[trigger.category] = playbook.id
        found[playbook.id] = playbook
        where[playbook.id] = str(path)
    if problems:
        raise PlaybookError(problems)
    return found


def load_playbooks(folder: Path) -> dict[str, Playbook]:
    """Every *.yaml directly in `folder`, by id."""
    return load_playbook_files(sorted(folder.glob("*.yaml")))

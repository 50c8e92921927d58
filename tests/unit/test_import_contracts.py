"""Layer contracts: the domain core imports nothing that does I/O (import-linter,
configured in pyproject.toml), and no two packages import each other, directly or
through others."""

from __future__ import annotations

import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from pingan.settings import PROJECT_ROOT


def test_the_domain_core_imports_no_shell() -> None:
    lint = Path(sys.executable).parent / "lint-imports"
    done = subprocess.run(
        [str(lint), "--no-cache"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "The domain core does no I/O" in done.stdout
    assert "1 kept, 0 broken" in done.stdout


def package_of(module: str) -> str:
    """The unit a cycle is judged by: streams, alerts, playbooks, and each package or
    module directly under pingan (pingan.core, pingan.dispatch, pingan.http, ...)."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "pingan" and len(parts) > 1 else parts[0]


def package_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Each cycle once, as the path that closes it (Tarjan would do; the graph is tiny)."""
    cycles: list[list[str]] = []
    seen: set[frozenset[str]] = set()

    def walk(path: list[str]) -> None:
        for nxt in sorted(edges.get(path[-1], ())):
            if nxt == path[0]:
                key = frozenset(path)
                if key not in seen:
                    seen.add(key)
                    cycles.append([*path, nxt])
            elif nxt not in path and nxt > path[0]:
                walk([*path, nxt])

    for start in sorted(edges):
        walk([start])
    return cycles


def test_the_cycle_finder_finds_cycles() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert package_cycles(edges) == [["a", "b", "c", "a"]]
    assert package_cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles_between_packages() -> None:
    import grimp

    graph = grimp.build_graph("pingan", "streams", "alerts", "playbooks")
    edges: dict[str, set[str]] = defaultdict(set)
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            a, b = package_of(module), package_of(imported)
            if a != b:
                edges[a].add(b)
    cycles = package_cycles(edges)
    assert cycles == [], "import cycles between packages: " + "; ".join(
        " -> ".join(c) for c in cycles
    )

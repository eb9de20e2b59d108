"""Imports go one way: no cycle between packages, and no package imports one above it.

Every `import`/`from ... import` counts, at module level or inside a function: a lazy import
that dodges a cycle at run time is still a cycle in the design.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "podium"

# Lowest first. A package may import its own modules and any package of a lower layer.
LAYERS: list[set[str]] = [
    {"registry", "geometry", "io", "strict"},
    {"losses", "metrics", "optim", "report"},
    {"heads", "data"},
    {"models"},
    {"engine"},
    {"inference"},
    {"config"},
    {"build"},
    {"workflows"},
    {"cli"},
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def _package_of(path: Path) -> str:
    """podium/<pkg>/... → pkg; podium/<module>.py → module."""
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def _imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
            if node.module == "podium":  # from podium import x
                names = [f"podium.{alias.name}" for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "podium" and len(parts) > 1:
                found.add(parts[1])
    return found


def package_graph() -> dict[str, dict[str, list[str]]]:
    """{package: {imported package: [files importing it]}}, self-imports left out."""
    graph: dict[str, dict[str, list[str]]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "__main__.py":
            continue
        source = _package_of(path)
        for target in _imported_packages(path) - {source}:
            graph.setdefault(source, {}).setdefault(target, []).append(
                str(path.relative_to(PACKAGE.parent))
            )
    return graph


def find_cycle(graph: dict[str, dict[str, list[str]]]) -> list[str] | None:
    """A cycle of packages as [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in graph.get(node, {}):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_every_package_has_a_layer():
    packages = {_package_of(p) for p in PACKAGE.rglob("*.py")} - {"__init__"}
    assert packages <= set(RANK), f"give these a layer in LAYERS: {sorted(packages - set(RANK))}"


def test_no_import_cycle_between_packages():
    cycle = find_cycle(package_graph())
    assert cycle is None, "import cycle: " + " → ".join(cycle)


def test_imports_only_go_down_the_layers():
    upward = [
        f"{source} imports {target} (layer {RANK[target]} ≥ {RANK[source]}): {', '.join(files)}"
        for source, targets in package_graph().items()
        for target, files in targets.items()
        if RANK.get(target, -1) >= RANK.get(source, -1)
    ]
    assert not upward, "\n".join(upward)


def test_the_cycle_finder_finds_a_cycle():
    graph = {"a": {"b": ["x"]}, "b": {"c": ["y"]}, "c": {"a": ["z"]}, "d": {"a": ["w"]}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b": ["x"]}, "b": {}}) is None


@pytest.mark.parametrize(
    "code, expected",
    [
        ("import podium.engine.module", {"engine"}),
        ("from podium.inference.tta import tta_apply", {"inference"}),
        ("from podium import build", {"build"}),
        ("def f():\n    from podium.workflows import fit\n", {"workflows"}),
        ("from . import sibling", set()),
    ],
)
def test_imports_are_found_at_any_depth(tmp_path, code, expected):
    path = tmp_path / "m.py"
    path.write_text(code)
    assert _imported_packages(path) == expected

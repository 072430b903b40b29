"""The architecture rules: nothing outside studio/ui imports Qt, and no import cycle anywhere in studio/.

import-linter checks the first and the layers (pyproject.toml); a cycle inside one layer, which a
layers contract cannot see, is what `test_no_import_cycle` catches.
"""

from __future__ import annotations

import ast
from pathlib import Path

import grimp

STUDIO = Path(__file__).resolve().parents[1] / "studio"
QT = {"PySide6", "pyqtgraph", "shiboken6"}
# The one sanctioned edge: `studio gui` imports the window inside cmd_gui, at call time.
ALLOWED = {"cli.py: studio.ui.app"}


def test_no_qt_outside_ui() -> None:
    offenders = []
    for path in STUDIO.rglob("*.py"):
        if path.relative_to(STUDIO).parts[0] == "ui":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [
                f"{path.relative_to(STUDIO)}: {n}" for n in names if n.split(".")[0] in QT or n.startswith("studio.ui")
            ]
    assert [o for o in offenders if o not in ALLOWED] == []


def test_every_torch_load_is_weights_only() -> None:
    for path in STUDIO.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "attr", None) == "load"
                and getattr(node.func.value, "id", None) == "torch"
            ):
                kw = {k.arg: k.value for k in node.keywords}
                assert isinstance(kw.get("weights_only"), ast.Constant) and kw["weights_only"].value is True, path


def import_cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """The strongly connected groups of modules (Tarjan's algorithm, iterative): each group is a cycle."""
    modules = sorted(graph.modules)
    edges = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    for root in modules:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            for j in range(i, len(edges[node])):
                nxt = edges[node][j]
                if nxt not in index:
                    work += [(node, j + 1), (nxt, 0)]
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                if low[node] == index[node]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == node:
                            break
                    if len(group) > 1 or node in edges[node]:
                        cycles.append(sorted(group))
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
    return cycles


def test_no_import_cycle() -> None:
    """Every import in studio/, also those inside functions, goes one way: no module reaches itself again."""
    assert import_cycles(grimp.build_graph("studio", cache_dir=None)) == []


def test_the_cycle_finder_finds_cycles() -> None:
    graph = grimp.ImportGraph()
    for importer, imported in [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d"), ("e", "e"), ("f", "d")]:
        graph.add_import(importer=importer, imported=imported)
    assert sorted(import_cycles(graph)) == [["a", "b", "c"], ["e"]]

"""The one architecture rule: nothing outside studio/ui imports Qt (import-linter checks it too)."""

from __future__ import annotations

import ast
from pathlib import Path

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
            offenders += [f"{path.relative_to(STUDIO)}: {n}" for n in names
                          if n.split(".")[0] in QT or n.startswith("studio.ui")]
    assert [o for o in offenders if o not in ALLOWED] == []


def test_every_torch_load_is_weights_only() -> None:
    for path in STUDIO.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "load" \
                    and getattr(node.func.value, "id", None) == "torch":
                kw = {k.arg: k.value for k in node.keywords}
                assert isinstance(kw.get("weights_only"), ast.Constant) and kw["weights_only"].value is True, path

"""The Runs tab shows the one runs folder the CLI uses too, lists CLI runs, and lets the user change it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QFileDialog

from studio.cli import main
from studio.engine.runs_folder import resolve_runs_folder, saved_runs_folder

TINY = '[data]\nsource = "linear"\n[model]\narch = "linear"\n[train]\nepochs = 1\n'


def test_cli_runs_appear_in_the_runs_tab_and_the_folder_can_change(
    qtbot: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from studio.ui.main_window import MainWindow

    monkeypatch.delenv("STUDIO_RUNS_DIR")  # the plain default: the user's data folder, as for `studio train`
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(TINY, encoding="utf-8")
    assert main(["train", str(cfg), "--quiet"]) == 0

    w = MainWindow()
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: w.views.built, timeout=30000)
    runs = w.views.runs
    assert runs.runs_dir == resolve_runs_folder().path
    assert [r.status for r in runs.runs] == ["completed"]  # the CLI's run
    assert "the default" in runs.folder_label.text()

    chosen = tmp_path / "elsewhere"
    chosen.mkdir()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: str(chosen)))
    runs.folder_button.click()
    assert saved_runs_folder() == chosen  # saved for `studio train` too
    assert runs.runs_dir == chosen and runs.runs == [] and "chosen in the Runs tab" in runs.folder_label.text()
    assert w.runs_folder().path == chosen
    assert str(chosen) in w.status.currentMessage()

    assert main(["train", str(cfg), "--quiet"]) == 0  # the CLI now trains there; the tab sees it
    qtbot.waitUntil(lambda: len(runs.runs) == 1, timeout=10000)
    assert w.shutdown(30.0)


def test_the_folder_a_window_was_given_wins_and_says_so(make_window: Any, tmp_path: Path) -> None:
    w = make_window()
    w.views.build()
    assert w.views.runs.runs_dir == tmp_path / "runs"
    assert "chosen for this window" in w.views.runs.folder_label.text()

"""Fixtures for the window tests: settings in a temp folder, dialogs that never block, a ready window."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QMessageBox


@pytest.fixture(autouse=True)
def _garbage_on_the_gui_thread(qapp: Any) -> Any:
    """Cycles are collected on this (the GUI) thread only, as in the app: a collection triggered by a
    worker thread would destroy the Qt objects left in cycles by earlier tests from that thread."""
    from studio.ui.garbage import collect_garbage_on_gui_thread

    collect_garbage_on_gui_thread()
    yield
    gc.collect()  # the collector's timer runs only while a test waits on the event loop


@pytest.fixture(autouse=True)
def _settings_in_tmp(tmp_path: Path) -> Path:
    """QSettings writes under tmp_path, never the user's real settings."""
    folder = tmp_path / "settings"
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(folder))
    return folder


class DialogLog:
    """What the window tried to show: (kind, title, text) for every message box."""

    def __init__(self) -> None:
        self.shown: list[tuple[str, str, str]] = []
        self.answer = QMessageBox.StandardButton.Yes

    def titles(self) -> list[str]:
        return [t for _, t, _ in self.shown]


@pytest.fixture(autouse=True)
def dialogs(monkeypatch: pytest.MonkeyPatch) -> DialogLog:
    """Patch QMessageBox so no test ever blocks on a modal box; record what was shown."""
    log = DialogLog()

    def fake_exec(box: QMessageBox) -> int:
        log.shown.append(("box", box.windowTitle(), box.informativeText() or box.text()))
        return int(QMessageBox.StandardButton.Ok.value)

    def fake_question(parent: Any, title: str, text: str, *args: Any, **kwargs: Any) -> Any:
        log.shown.append(("question", title, text))
        return log.answer

    monkeypatch.setattr(QMessageBox, "exec", fake_exec)
    monkeypatch.setattr(QMessageBox, "question", staticmethod(fake_question))
    return log


@pytest.fixture
def make_window(qtbot: Any, tmp_path: Path) -> Any:
    """Build a shown MainWindow whose engine (torch) is loaded; stopped and closed after the test."""
    from studio.ui.main_window import MainWindow

    made: list[Any] = []

    def make(config: Any = None) -> Any:
        w = MainWindow(config=config, runs_dir=tmp_path / "runs")
        qtbot.addWidget(w)
        w.show()
        qtbot.waitUntil(lambda: w._engine_ready, timeout=20000)
        made.append(w)
        return w

    yield make
    for w in made:
        assert w.shutdown(30.0), "the training thread did not finish"


@pytest.fixture
def curves_view(qtbot: Any) -> Any:
    """Build a `CurvesView` over a new `RunHistory` (`view.history`) of `epochs_total` epochs; shown at
    `size` when one is given."""
    from studio.ui.curves_view import CurvesView
    from studio.ui.history import RunHistory

    def make(epochs_total: int, size: tuple[int, int] | None = None) -> Any:
        history = RunHistory()
        history.epochs_total = epochs_total
        view = CurvesView(history)
        qtbot.addWidget(view)
        if size is not None:
            view.resize(*size)
            view.show()
        return view

    return make

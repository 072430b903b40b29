"""The window's Continue Run on a folder another process trains: the engine's lock refuses it, and the
user reads why in the error dialog, with the run's files untouched."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QToolButton

from studio.config import Config, with_overrides
from studio.engine.control import TrainingControl
from studio.engine.locking import run_dir_lock
from studio.engine.trainer import Trainer

pytestmark = pytest.mark.usefixtures("qapp")


def hashes(run: Path) -> dict[str, str]:
    return {
        str(p.relative_to(run)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(run.rglob("*"))
        if p.is_file()
    }


def test_continue_run_on_a_busy_folder_shows_the_lock_error(
    qtbot: Any, make_window: Any, dialogs: Any, tmp_path: Path
) -> None:
    run = tmp_path / "stopped"
    cfg = with_overrides(Config(), ['train.device="cpu"', "train.epochs=2", "data.val_split=0.8"])
    control = TrainingControl()
    control.stop()  # a stopped run: last.pt at step 0, ready to continue
    assert Trainer(cfg, run, control=control).fit()["status"] == "stopped"

    w = make_window()
    assert w.open_run(run)
    before = hashes(run)
    with run_dir_lock(run):  # as a `studio train` in another process would hold it
        button = w.findChild(QToolButton, "resumeButton")
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: not w.is_training and w._thread is None, timeout=60000)
    assert w.last_outcome.error is not None and w.last_outcome.error.kind == "input"
    shown = [(title, text) for kind, title, text in dialogs.shown]
    assert any(
        title == "Cannot train with this setup" and f"in use by process {os.getpid()}" in text for title, text in shown
    ), shown
    assert hashes(run) == before

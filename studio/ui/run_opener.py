"""`RunOpener`: what the window opens: a run folder (File › Open Run, Recent Runs, a drop), a config, data.

Opening a run reads its folder (config.toml, metrics.jsonl, summary.json) and hands it to the run
controller, which shows it; the opener also keeps the recent-runs list (every run that ends or is
opened) and says what a dropped path means. Drops are refused while a run trains.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from functools import partial
from pathlib import Path

from PySide6.QtCore import QObject, QSettings, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QFileDialog, QMenu, QWidget

from studio.config import load_config
from studio.engine.run_dir import RunDir, check_run_dir, read_metrics, read_summary
from studio.errors import StudioError
from studio.ui.dialogs import show_error
from studio.ui.run_controller import RunController, RunState
from studio.ui.settings import add_recent_run, recent_runs
from studio.ui.setup_sidebar import SetupSidebar
from studio.ui.worker import RunOutcome

DATA_SUFFIXES = (".csv", ".tsv", ".txt")


class RunOpener(QObject):
    """Opens runs, configs and data for `window`; `runs_dir()` is where the file dialog starts."""

    notice = Signal(str, int)  # a status-bar message and how long it shows (ms)

    def __init__(
        self,
        window: QWidget,
        controller: RunController,
        sidebar: SetupSidebar,
        settings: QSettings,
        runs_dir: Callable[[], Path],
    ) -> None:
        super().__init__(window)
        self.window, self.controller, self.sidebar, self.settings = window, controller, sidebar, settings
        self._runs_dir = runs_dir
        controller.finished.connect(self._remember)
        controller.state_changed.connect(self._on_state)

    # -- runs ------------------------------------------------------------------------------------

    def choose_run(self) -> None:
        start = self._runs_dir()
        path = QFileDialog.getExistingDirectory(
            self.window, "Open a run", str(start if start.is_dir() else Path.home())
        )
        if path:
            self.open_run(Path(path))

    def open_run(self, run_dir: Path) -> bool:
        """Restore a run's setup and curves from its folder; False (with a dialog) when it cannot be read."""
        if self.controller.is_training:
            return False
        try:
            run_dir = check_run_dir(Path(run_dir))
            cfg = load_config(RunDir(run_dir).config)
        except StudioError as exc:
            show_error(self.window, "Cannot open this run", str(exc))
            return False
        self.sidebar.set_config(cfg)
        self.controller.show_run(run_dir, cfg.train.epochs, read_metrics(run_dir), read_summary(run_dir) or {})
        add_recent_run(self.settings, str(run_dir))
        return True

    def choose_follow_run(self) -> None:
        start = self._runs_dir()
        path = QFileDialog.getExistingDirectory(
            self.window, "Follow a run", str(start if start.is_dir() else Path.home())
        )
        if path:
            self.follow_run(Path(path))

    def follow_run(self, run_dir: Path) -> bool:
        """Show a run another process writes, live; False (with a dialog) when it is no run folder.

        A run on a cluster names data and weights by the cluster's paths: a setup that does not
        load here is not shown, and the run is followed all the same.
        """
        if self.controller.is_training:
            return False
        try:
            run_dir = check_run_dir(Path(run_dir))
        except StudioError as exc:
            show_error(self.window, "Cannot follow this run", str(exc))
            return False
        try:
            cfg = load_config(RunDir(run_dir).config)
        except StudioError as exc:
            epochs = _epochs_of(RunDir(run_dir).config)
            self.notice.emit(f"Following {run_dir.name} without showing its setup: {exc}", 15000)
        else:
            epochs = cfg.train.epochs
            self.sidebar.set_config(cfg)
        self.controller.follow(run_dir, epochs)
        add_recent_run(self.settings, str(run_dir))
        return True

    def fill_recent_menu(self, menu: QMenu) -> None:
        menu.clear()
        runs = [r for r in recent_runs(self.settings) if Path(r).is_dir()]
        if not runs:
            menu.addAction("No recent runs").setEnabled(False)
            return
        for r in runs:
            menu.addAction(Path(r).name, partial(self.open_run, Path(r)))

    def _remember(self, outcome: RunOutcome) -> None:
        if outcome.run_dir and RunDir(Path(outcome.run_dir)).is_run():
            add_recent_run(self.settings, outcome.run_dir)

    # -- configs ---------------------------------------------------------------------------------

    def choose_config(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.window, "Open a setup", str(Path.home()), "TOML config (*.toml)")
        if path:
            self.open_config(Path(path))

    def open_config(self, path: Path) -> None:
        try:
            self.sidebar.set_config(load_config(path))
        except StudioError as exc:
            show_error(self.window, "Cannot open this config", str(exc))
            return
        self.notice.emit(f"Loaded {path.name}", 4000)

    # -- drag and drop ---------------------------------------------------------------------------

    def accepts(self, event: QDragEnterEvent) -> bool:
        urls = event.mimeData().urls() if event.mimeData().hasUrls() else []
        return len(urls) == 1 and urls[0].isLocalFile() and not self.controller.is_training

    def drop(self, event: QDropEvent) -> None:
        path = Path(event.mimeData().urls()[0].toLocalFile())
        event.acceptProposedAction()
        self.open_path(path)

    def open_path(self, path: Path) -> None:
        """What a dropped path means: a run folder opens, a .toml loads, a CSV or folder becomes the data."""
        if path.is_dir() and RunDir(path).is_run():
            self.open_run(path)
        elif path.suffix.lower() == ".toml":
            self.open_config(path)
        elif path.is_dir() or path.suffix.lower() in DATA_SUFFIXES:
            self.sidebar.data_panel.choose_path(path)
            self.notice.emit(f"Data: {path.name}", 4000)
        else:
            show_error(
                self.window,
                "Cannot use this file",
                f"'{path.name}' is neither a folder of images, a CSV file, a config (.toml) nor a run folder.",
            )

    def _on_state(self, state: RunState) -> None:
        self.window.setAcceptDrops(not state.is_training)


def _epochs_of(config_file: Path) -> int:
    """[train] epochs of a config that does not load here (its data lives elsewhere); 0 when unreadable."""
    try:
        epochs = tomllib.loads(config_file.read_text(encoding="utf-8")).get("train", {}).get("epochs")
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, AttributeError):
        return 0
    return epochs if isinstance(epochs, int) and not isinstance(epochs, bool) and epochs > 0 else 0

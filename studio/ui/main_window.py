"""`MainWindow`: the studio. Setup on the left, live curves in tabs, run controls on top.

The window is a shell: it builds its parts and wires them, and does little else. The run is the
`RunController`'s (thread, worker, state, close-after-stop); the curves' data is the `RunHistory`
it fills; the views, cards, status bar, toolbar and menus subscribe to those two. torch is imported
on the GUI thread right after the first paint, so the window appears before the heavy import and
no worker imports it first.
"""

from __future__ import annotations

import time
from functools import reduce
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QThread, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent, QPaintEvent
from PySide6.QtWidgets import QApplication, QMainWindow, QSplitter, QTabWidget, QWidget

from studio.config import Config
from studio.errors import StudioError
from studio.ui import settings as stored
from studio.ui.actions.window_actions import WindowActions
from studio.ui.background_call import BackgroundCall
from studio.ui.dialogs import ask_stop_and_close, show_error, show_info
from studio.ui.garbage import collect_garbage_on_gui_thread
from studio.ui.history import RunHistory
from studio.ui.log_panel import LogDock
from studio.ui.qt_helpers import application, named
from studio.ui.run_controller import CannotStart, RunController
from studio.ui.run_dialogs import RunDialogs
from studio.ui.run_opener import RunOpener
from studio.ui.run_toolbar import RunToolBar
from studio.ui.runs_location import RunsLocation
from studio.ui.setup_sidebar import SetupSidebar
from studio.ui.status_bar import TrainingStatusBar
from studio.ui.theme import app_icon, apply_theme, current_theme
from studio.ui.training_tab import TrainingTab
from studio.ui.view_tabs import ViewTabs
from studio.ui.worker import RunOutcome

ERROR_TITLES = {"input": "Cannot train with this setup", "diverged": "Training diverged"}


def _part(*path: str) -> Any:
    """An attribute of the window that is one of its parts': `data_panel = _part("sidebar", "data_panel")`."""
    return property(lambda window: reduce(getattr, path, window))


class MainWindow(QMainWindow):
    """The studio window. `config` is the setup to show (default: the last one, else digits + MLP);
    runs go under `runs_dir`, else where `studio train` puts them (`engine/runs_folder.py`)."""

    run_finished = Signal(object)  # RunOutcome, after the window has updated itself
    engine_loaded = Signal()
    first_painted = Signal()

    def __init__(self, config: Config | None = None, runs_dir: str | Path | None = None) -> None:
        super().__init__()
        self.setObjectName("mainWindow")
        self._created_at = time.perf_counter()
        self.first_paint_s: float | None = None  # seconds from construction to the first paint
        self.runs_location = RunsLocation(runs_dir)
        self.settings = stored.app_settings()
        self._engine_ready = False
        self.history = RunHistory(self)
        self.controller = RunController(self.history, self)
        self.setWindowTitle("Studio")
        self.setWindowIcon(app_icon())
        self.setAcceptDrops(True)

        self.window_actions = WindowActions(self, self.controller)
        self.toolbar = RunToolBar(self.window_actions, self.controller)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, self.toolbar)
        self.sidebar = SetupSidebar(self.controller)
        self.training_tab = TrainingTab(self.history, self.controller)
        self.tabs = named(QTabWidget(), "viewTabs")
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.training_tab, "Training")
        self.views = ViewTabs(self.tabs, self.history, self.controller, self.runs_location.folder)
        self.main_splitter = named(QSplitter(Qt.Orientation.Horizontal), "mainSplitter")
        self.main_splitter.addWidget(self.sidebar)
        self.main_splitter.addWidget(self.tabs)
        self.main_splitter.setStretchFactor(0, 0)
        self.main_splitter.setStretchFactor(1, 1)
        self.main_splitter.setSizes([380, 1060])
        self.main_splitter.setChildrenCollapsible(False)
        self.main_splitter.setHandleWidth(1)
        self.setCentralWidget(self.main_splitter)
        self.log_dock = LogDock(self)
        self.log = self.log_dock.log
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.log_dock)
        self.resizeDocks([self.log_dock], [120], Qt.Orientation.Vertical)
        self.window_actions.view_menu.addAction(self.log_dock.toggle)
        self.status = TrainingStatusBar(self.controller, self)
        self.setStatusBar(self.status)
        self.opener = RunOpener(self, self.controller, self.sidebar, self.settings, self.runs_location.path)
        self.dialogs = RunDialogs(self, self.controller, self.sidebar, self.load_engine)

        self.controller.message.connect(self.log.append)
        self.sidebar.notice.connect(self.status.showMessage)
        self.opener.notice.connect(self.status.showMessage)
        self.sidebar.inspected.connect(self.training_tab.show_inspection)
        self.sidebar.config_changed.connect(self.views.set_config)
        self.sidebar.config_changed.connect(self.training_tab.show_setup)
        self.controller.run_changed.connect(self._show_title)
        self.controller.finished.connect(self.run_finished)  # after the status bar has said how it ended
        self.controller.run_ended.connect(self._on_run_ended)
        self.controller.close_ready.connect(self._close_now)
        self.dialogs.exported.connect(self.views.exported)
        self.views.open_requested.connect(self._open_run_from_view)
        self.views.runs_folder_changed.connect(self.runs_location.use)
        self.views.notice.connect(self.status.showMessage)
        self.dialogs.notice.connect(self.status.showMessage)
        self.dialogs.message.connect(self.log.append)

        self.set_config(config if config is not None else stored.last_setup(self.settings))
        theme = stored.restore_window(self.settings, self, self.main_splitter)
        if theme in self.theme_actions:
            self.theme_actions[theme].setChecked(True)
        self.window_actions.refresh()
        self.toolbar.show_state(self.controller.state)
        self.resize(self.size() if self.settings.contains("window/geometry") else stored.default_window_size())
        # exec() returning with a run still training (app.exit(), or a quit that skipped the windows)
        # must not leave the thread running into the application's destruction.
        application().aboutToQuit.connect(self._on_about_to_quit)
        collect_garbage_on_gui_thread()  # the run's thread must never destroy this window's objects

    # -- what tests, scripts and the menus reach: the parts own it ----------------------------------

    is_training = _part("controller", "is_training")
    runs_dir = _part("runs_location", "explicit")  # the folder this window was given (or chose), else None
    runs_folder = _part("runs_location", "folder")  # where Train puts a run, and why there
    current_run_dir = _part("controller", "run_dir")
    last_outcome = _part("controller", "last_outcome")
    control = _part("controller", "control")
    _thread = _part("controller", "worker_thread")
    _worker = _part("controller", "worker")
    toggle_pause = _part("controller", "toggle_pause")
    stop_training = _part("controller", "stop")
    config = _part("sidebar", "config")  # the setup shown; raises `ConfigError` saying what is wrong
    set_config = _part("sidebar", "set_config")
    open_run = _part("opener", "open_run")  # a run folder: its setup, curves and state
    open_path = _part("opener", "open_path")  # what a dropped path means
    choose_run = _part("opener", "choose_run")
    choose_follow_run = _part("opener", "choose_follow_run")
    choose_config = _part("opener", "choose_config")
    fill_recent_menu = _part("opener", "fill_recent_menu")
    save_config_as = _part("sidebar", "save_config_as")
    export_current_run = _part("dialogs", "open_export")
    open_lr_finder = _part("dialogs", "open_lr_finder")
    curves = _part("training_tab", "curves")
    metric_cards = _part("training_tab", "metric_cards")
    data_panel = _part("sidebar", "data_panel")
    model_panel = _part("sidebar", "model_panel")
    training_panel = _part("sidebar", "training_panel")
    setup_error = _part("sidebar", "setup_error")
    lossPlot = _part("training_tab", "curves", "loss_plot")  # noqa: N815 - the contract's objectName
    accuracyPlot = _part("training_tab", "curves", "accuracy_plot")  # noqa: N815 - the contract's objectName
    state_label = _part("toolbar", "state_label")
    theme_actions = _part("window_actions", "theme_actions")
    export_dialog = _part("dialogs", "export_dialog")
    lr_finder_dialog = _part("dialogs", "lr_finder_dialog")
    train_button = property(lambda w: w.toolbar.buttons["trainButton"])
    stop_button = property(lambda w: w.toolbar.buttons["stopButton"])
    pause_action = property(lambda w: w.window_actions["pause"])

    def add_view(self, widget: QWidget, title: str) -> int:
        """Add a tab beside "Training" (evaluation, data explorer, runs…); returns its index."""
        return self.tabs.addTab(widget, title)

    # -- the setup and the run ---------------------------------------------------------------------

    def new_setup(self) -> None:
        self.set_config(Config())
        self.controller.forget()

    def start_training(self, resume: bool = False) -> bool:
        """Start a new run (or resume the shown one) on the worker thread; False if it could not."""
        if self.is_training:
            return False
        try:
            request = self.controller.plan(self.config, resume, self.runs_location.path(), self.sidebar.processes())
        except CannotStart as exc:
            (show_info if exc.info else show_error)(self, exc.title, exc.message)
            return False
        self.load_engine()
        stored.remember_setup(self.settings, request.config)
        self.controller.start(request)
        return True

    def _on_run_ended(self, outcome: RunOutcome) -> None:
        if outcome.error is not None:
            title = ERROR_TITLES.get(outcome.error.kind, "Training failed unexpectedly")
            show_error(self, title, outcome.error.message, outcome.error.details)

    def _open_run_from_view(self, run_dir: Path) -> None:
        if self.is_training:
            self.status.showMessage("A run is training: stop it before opening another", 6000)
        elif self.opener.open_run(run_dir):
            self.tabs.setCurrentIndex(0)

    def _show_title(self, run_dir: Path | None) -> None:
        self.setWindowTitle(f"Studio — {run_dir.name}" if run_dir else "Studio")

    # -- first paint, then the engine ----------------------------------------------------------

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        if self.first_paint_s is None:
            self.first_paint_s = time.perf_counter() - self._created_at
            self.first_painted.emit()
            QTimer.singleShot(0, self.load_engine)

    def load_engine(self) -> None:
        """Import torch on the GUI thread (never first in a worker), then list devices and inspect."""
        if self._engine_ready:
            return
        t0 = time.perf_counter()
        import torch  # noqa: F401 - the import itself is the point

        self.torch_thread_is_gui = QThread.currentThread() is application().thread()
        from studio.engine.device import available_devices

        self.torch_import_s = time.perf_counter() - t0
        self._engine_ready = True
        devices = available_devices()
        # Auto picks the first of CUDA, MPS, CPU: say which one that is before any run.
        self.status.set_device(devices[0][1] if devices[0][0] != "cpu" else "CPU")
        self.views.build()
        self.sidebar.start_inspecting(devices)
        self.engine_loaded.emit()

    # -- look, persistence, closing --------------------------------------------------------------

    def set_theme(self, name: str) -> None:
        app = QApplication.instance()
        theme = apply_theme(app, name) if isinstance(app, QApplication) else current_theme()
        self.settings.setValue("view/theme", name)
        if name in self.theme_actions:
            self.theme_actions[name].setChecked(True)
        self.training_tab.curves.apply_theme(theme)
        self.views.apply_theme()
        self.log.apply_theme(theme)
        self.window_actions.apply_theme()
        self.toolbar.apply_theme()
        self.sidebar.apply_theme()

    def save_settings(self) -> None:
        try:
            cfg: Config | None = self.config()
        except StudioError:
            cfg = None  # an unfinished setup is not worth keeping over the last good one
        stored.save_window(self.settings, self, self.main_splitter, cfg)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if self.opener.accepts(event):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        self.opener.drop(event)

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.is_training:
            # The close waits for the run to stop at its next step and save itself; the window
            # closes (and a held-back quit goes on) from `_close_now`.
            event.ignore()
            if not self.controller.close_after_stop and (self.controller.quit_requested or ask_stop_and_close(self)):
                self.controller.close_when_stopped()
            return
        self.save_settings()
        self.sidebar.stop_inspecting()  # a closed window starts no new work
        self.dialogs.close_all()
        if BackgroundCall.running_calls():
            # An evaluation or an export cannot be interrupted: let it end out of sight, then go.
            self.hide()
        self.views.shutdown()
        event.accept()

    def _close_now(self, quit_after: bool) -> None:
        self.close()
        if quit_after:
            QApplication.quit()  # the quit this run held back, now that the run is saved

    def _on_about_to_quit(self) -> None:
        self.controller.prepare_quit()  # its end must not show dialogs into a quitting application
        self.shutdown(30.0)

    def shutdown(self, timeout_s: float = 10.0) -> bool:
        """Stop any run and wait for its thread and the views' work while events flow; True when none is left."""
        deadline = time.perf_counter() + timeout_s
        self.controller.shutdown(timeout_s)
        self.dialogs.close_all()
        views_done = self.views.shutdown(int(max(deadline - time.perf_counter(), 0.5) * 1000))
        return not self.is_training and views_done

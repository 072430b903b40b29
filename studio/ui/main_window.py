"""`MainWindow`: the studio. Setup cards on the left, live curves in tabs, run controls on top.

Training runs on a `QThread` through `studio.ui.worker`; this window only reacts to its signals
and steers the run through a `TrainingControl`. torch is imported on the GUI thread right after
the first paint, so the window appears before the heavy import and no worker imports it first.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QEvent, QObject, Qt, QThread, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (QApplication, QDockWidget, QFileDialog, QLabel, QMainWindow, QScrollArea,
                               QSizePolicy, QSplitter, QTabWidget, QToolBar, QToolButton, QVBoxLayout, QWidget)

from studio.config import Config, config_from_dict, load_config, save_config
from studio.engine.control import TrainingControl
from studio.engine.run_dir import RunDir, check_run_dir, default_runs_dir, new_run_dir, read_metrics, read_summary
from studio.errors import StudioError
from studio.ui.background_call import BackgroundCall
from studio.ui.curves_view import CurvesView
from studio.ui.dialogs import ask_stop_and_close, show_error, show_info
from studio.ui.garbage import collect_garbage_on_gui_thread
from studio.ui.history import RunHistory
from studio.ui.log_panel import LogPanel
from studio.ui.metric_cards import MetricCards
from studio.ui.settings import add_recent_run, app_settings, recent_runs
from studio.ui.setup_inspector import SetupInspector
from studio.ui.setup_panels import DataPanel, ModelPanel, TrainingPanel, config_dict
from studio.ui.status_bar import TrainingStatusBar
from studio.ui.theme import THEMES, app_icon, apply_theme, current_theme, themed_icon
from studio.ui.view_tabs import ViewTabs
from studio.ui.worker import RunError, RunOutcome, start_training

STATE_TEXT = {"ready": "Ready", "training": "Training", "paused": "Paused", "stopping": "Stopping…",
              "completed": "Completed", "early_stopped": "Early stopped", "stopped": "Stopped", "failed": "Failed"}


class _QuitWatcher(QObject):
    """Sees the application's Quit event before Qt closes the windows for it.

    `app.quit()` (a script, SIGTERM, the session ending) closes every window first; a close that
    comes from it must stop the run and go, not ask a question nobody may be there to answer.
    Installed on the application only while a run trains: an application event filter sees
    every event, and it is needed only then.
    """

    def __init__(self, on_quit: Any) -> None:
        super().__init__()
        self._on_quit = on_quit

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt's name
        if event.type() == QEvent.Type.Quit:
            self._on_quit()
        return False


class MainWindow(QMainWindow):
    """The studio window. `config` is the setup to show (default: the last one, else digits + MLP);
    runs go under `runs_dir`, else `$STUDIO_RUNS_DIR`, else the user's data folder."""

    run_finished = Signal(object)  # RunOutcome, after the window has updated itself
    engine_loaded = Signal()
    first_painted = Signal()

    def __init__(self, config: Config | None = None, runs_dir: str | Path | None = None) -> None:
        super().__init__()
        self.setObjectName("mainWindow")
        self._created_at = time.perf_counter()
        self.first_paint_s: float | None = None  # seconds from construction to the first paint
        self.runs_dir = Path(runs_dir) if runs_dir else None
        self.settings = app_settings()
        self.history = RunHistory()
        self.control: TrainingControl | None = None
        self._thread: QThread | None = None
        self._worker: Any = None
        self._state = "ready"
        self.current_run_dir: Path | None = None
        self._run_status: str | None = None
        self._epochs_total = 0
        self._fit_t0 = 0.0
        self._fit_frac0 = 0.0
        self._close_after_stop = False
        self._quit_requested = False  # the application is quitting: stop the run, ask nothing, then go
        self._quit_watcher = _QuitWatcher(self._on_quit_requested)
        self._engine_ready = False
        self._pending_error: RunError | None = None
        self.last_outcome: RunOutcome | None = None
        self._latest_step: Any = None
        self.export_dialog: Any = None
        self.lr_finder_dialog: Any = None

        self.setWindowTitle("Studio")
        self.setWindowIcon(app_icon())
        self.setAcceptDrops(True)
        self._build_actions()
        self._build_toolbar()
        self._build_menus()
        self._build_central()
        self._build_log_dock()
        self.status = TrainingStatusBar(self)
        self.setStatusBar(self.status)

        self.inspector = SetupInspector()
        self.inspector.inspected.connect(self._on_inspected)
        self._inspect_timer = QTimer(self)
        self._inspect_timer.setSingleShot(True)
        self._inspect_timer.setInterval(250)
        self._inspect_timer.timeout.connect(self._validate_setup)
        for card in self.cards:
            card.changed.connect(self._inspect_timer.start)
        self._progress_timer = QTimer(self)
        self._progress_timer.setInterval(250)
        self._progress_timer.timeout.connect(self._show_progress)
        self._progress_timer.start()
        self.training_panel.lr_committed.connect(self._on_lr_committed)
        self.training_panel.batch_size_committed.connect(self._on_batch_size_committed)

        self.set_config(config if config is not None else self._last_setup())
        self._restore_window()
        self._set_state("ready")
        self.resize(self.size() if self.settings.contains("window/geometry") else self._default_size())
        # exec() returning with a run still training (app.exit(), or a quit that skipped the windows)
        # must not leave the thread running into the application's destruction.
        QApplication.instance().aboutToQuit.connect(self._on_about_to_quit)
        collect_garbage_on_gui_thread()  # the run's thread must never destroy this window's objects

    # -- construction ----------------------------------------------------------------------------

    def _default_size(self) -> Any:
        from PySide6.QtCore import QSize

        screen = QApplication.primaryScreen()
        avail = screen.availableGeometry() if screen else None
        if avail is None:
            return QSize(1440, 900)
        return QSize(min(1440, int(avail.width() * 0.92)), min(900, int(avail.height() * 0.92)))

    def _action(self, text: str, icon: str | None, shortcut: str | QKeySequence.StandardKey | None,
                tip: str, slot: Any) -> QAction:
        action = QAction(text, self)
        if icon:
            action.setIcon(themed_icon(icon))
            action.setData(icon)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        key = f" ({action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)})" if shortcut else ""
        action.setToolTip(f"{tip}{key}")
        action.setStatusTip(tip)
        action.triggered.connect(slot)
        return action

    def _build_actions(self) -> None:
        self.train_action = self._action("Train", "play", "Ctrl+Return", "Start a new run with this setup",
                                         lambda: self.start_training())
        self.pause_action = self._action("Pause", "pause", "Ctrl+P", "Pause or resume the running training",
                                         self.toggle_pause)
        self.stop_action = self._action("Stop", "stop", "Ctrl+.", "Stop the run; it is saved and can be resumed",
                                        self.stop_training)
        self.resume_action = self._action("Continue Run", "resume", "Ctrl+R",
                                          "Resume the current run from its last checkpoint (raise Epochs to "
                                          "train a finished run further)",
                                          lambda: self.start_training(resume=True))
        self.export_action = self._action("Export", "export", "Ctrl+E", "Export the current run's model to ONNX",
                                          self.export_current_run)
        self.lr_finder_action = self._action("LR Finder", "lr-finder", "Ctrl+Shift+L",
                                             "Find a good learning rate for this setup with a short range test",
                                             self.open_lr_finder)
        self.open_run_action = self._action("Open Run…", None, "Ctrl+Shift+O", "Open a finished or stopped run",
                                            self.choose_run)
        self.open_config_action = self._action("Open Config…", None, QKeySequence.StandardKey.Open,
                                               "Load a setup from a TOML file", self.choose_config)
        self.save_config_action = self._action("Save Config As…", None, QKeySequence.StandardKey.Save,
                                               "Save this setup as a TOML file", self.save_config_as)
        self.new_setup_action = self._action("New Setup", None, QKeySequence.StandardKey.New,
                                             "Start over from the default setup", self.new_setup)
        self.quit_action = self._action("Quit", None, QKeySequence.StandardKey.Quit, "Close the studio", self.close)

    def _build_toolbar(self) -> None:
        bar = QToolBar("Run")
        bar.setObjectName("runToolBar")
        bar.setMovable(False)
        bar.setFloatable(False)
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        bar.setContextMenuPolicy(Qt.ContextMenuPolicy.PreventContextMenu)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, bar)
        self.run_toolbar = bar
        self.buttons: dict[str, QToolButton] = {}
        for name, action in (("trainButton", self.train_action), ("pauseButton", self.pause_action),
                             ("stopButton", self.stop_action), ("resumeButton", self.resume_action),
                             ("exportButton", self.export_action), ("lrFinderButton", self.lr_finder_action)):
            if name in ("exportButton", "lrFinderButton"):
                bar.addSeparator()
            button = QToolButton()
            button.setObjectName(name)
            button.setDefaultAction(action)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
            button.setCursor(Qt.CursorShape.PointingHandCursor)
            bar.addWidget(button)
            self.buttons[name] = button
        self.train_button = self.buttons["trainButton"]
        self.pause_button = self.buttons["pauseButton"]
        self.stop_button = self.buttons["stopButton"]
        self.resume_button = self.buttons["resumeButton"]
        self.export_button = self.buttons["exportButton"]
        spacer = QWidget()
        spacer.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        bar.addWidget(spacer)
        self.run_name_label = QLabel("")
        self.run_name_label.setObjectName("runNameLabel")
        bar.addWidget(self.run_name_label)
        self.state_label = QLabel("Ready")
        self.state_label.setObjectName("runStateLabel")
        bar.addWidget(self.state_label)

    def _build_menus(self) -> None:
        mb = self.menuBar()
        file = mb.addMenu("&File")
        file.addAction(self.new_setup_action)
        file.addAction(self.open_config_action)
        file.addAction(self.save_config_action)
        file.addSeparator()
        file.addAction(self.open_run_action)
        self.recent_menu = file.addMenu("Recent Runs")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        file.addSeparator()
        file.addAction(self.quit_action)
        run = mb.addMenu("&Run")
        for a in (self.train_action, self.pause_action, self.stop_action, self.resume_action):
            run.addAction(a)
        run.addSeparator()
        run.addAction(self.export_action)
        run.addAction(self.lr_finder_action)
        view = mb.addMenu("&View")
        theme_menu = view.addMenu("Theme")
        group = QActionGroup(self)
        self.theme_actions: dict[str, QAction] = {}
        for name in THEMES:
            a = QAction(name.capitalize(), self, checkable=True)
            a.triggered.connect(lambda _=False, n=name: self.set_theme(n))
            group.addAction(a)
            theme_menu.addAction(a)
            self.theme_actions[name] = a
        self.view_menu = view
        help_menu = mb.addMenu("&Help")
        help_menu.addAction("About Studio", self._about)

    def _build_central(self) -> None:
        self.data_panel = DataPanel()
        self.model_panel = ModelPanel()
        self.training_panel = TrainingPanel()
        self.cards = [self.data_panel, self.model_panel, self.training_panel]

        sidebar = QWidget()
        sidebar.setObjectName("setupSidebar")
        side = QVBoxLayout(sidebar)
        side.setContentsMargins(0, 0, 0, 0)
        scroll = QScrollArea()
        scroll.setObjectName("setupScroll")
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        container = QWidget()
        container.setObjectName("setupContainer")
        lay = QVBoxLayout(container)
        lay.setContentsMargins(12, 10, 10, 12)
        lay.setSpacing(10)
        title = QLabel("Setup")
        title.setObjectName("sidebarTitle")
        title.setToolTip("Choose data, a model and how to train it; hover a field for what it does.")
        lay.addWidget(title)
        for card in self.cards:
            lay.addWidget(card)
        self.setup_error = QLabel("")
        self.setup_error.setObjectName("setupError")
        self.setup_error.setWordWrap(True)
        self.setup_error.setVisible(False)
        lay.addWidget(self.setup_error)
        lay.addStretch(1)
        scroll.setWidget(container)
        side.addWidget(scroll)
        sidebar.setMinimumWidth(330)
        sidebar.setMaximumWidth(520)

        self.curves = CurvesView(self.history)
        self.lossPlot = self.curves.loss_plot
        self.accuracyPlot = self.curves.accuracy_plot
        self.metric_cards = MetricCards()
        training = QWidget()
        training.setObjectName("trainingTab")
        tl = QVBoxLayout(training)
        tl.setContentsMargins(14, 12, 14, 12)
        tl.setSpacing(12)
        tl.addWidget(self.metric_cards)
        tl.addWidget(self.curves, 1)
        self.tabs = QTabWidget()
        self.tabs.setObjectName("viewTabs")
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(training, "Training")
        self.views = ViewTabs(self.tabs, self._runs_base, self._open_run_from_view)

        split = QSplitter(Qt.Orientation.Horizontal)
        split.setObjectName("mainSplitter")
        split.addWidget(sidebar)
        split.addWidget(self.tabs)
        split.setStretchFactor(0, 0)
        split.setStretchFactor(1, 1)
        split.setSizes([380, 1060])
        split.setChildrenCollapsible(False)
        split.setHandleWidth(1)
        self.main_splitter = split
        self.setCentralWidget(split)

    def _build_log_dock(self) -> None:
        self.log = LogPanel()
        dock = QDockWidget("Log", self)
        dock.setObjectName("logDock")
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetClosable |
                         QDockWidget.DockWidgetFeature.DockWidgetMovable)
        dock.setWidget(self.log)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, dock)
        self.resizeDocks([dock], [120], Qt.Orientation.Vertical)
        self.log_dock = dock
        toggle = dock.toggleViewAction()
        toggle.setText("Show Log")
        toggle.setShortcut(QKeySequence("Ctrl+L"))
        self.view_menu.addAction(toggle)

    # -- extension points ------------------------------------------------------------------------

    def add_view(self, widget: QWidget, title: str) -> int:
        """Add a tab beside "Training" (evaluation, data explorer, runs…); returns its index."""
        return self.tabs.addTab(widget, title)

    def export_current_run(self) -> None:
        """Open the export dialog for the current run; once a file is written, Predict uses it."""
        run = self.current_run_dir
        if run is None or not self.export_action.isEnabled():
            return
        if self.export_dialog is not None and self.export_dialog.isVisible():
            self.export_dialog.raise_()
            self.export_dialog.activateWindow()
            return
        from studio.ui.export_dialog import ExportDialog

        dialog = ExportDialog(run, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.resize(max(dialog.width(), 860), max(dialog.height(), 640))  # the report's lines fit
        dialog.exported.connect(self._on_exported)
        dialog.finished.connect(self._on_export_dialog_gone)  # not `destroyed`: that also fires as this window goes
        self.export_dialog = dialog
        dialog.open()

    def _on_exported(self, report: dict) -> None:
        run = self.current_run_dir
        if run is not None:
            self.views.exported(run)
            self.views.show_tab("predict")
        self.log.append_message(f"exported {report.get('path', 'the model')}")
        self.status.showMessage("Exported: the Predict tab now uses the ONNX model", 8000)

    def _on_export_dialog_gone(self, _result: int = 0) -> None:
        self.export_dialog = None

    def open_lr_finder(self) -> None:
        """Run a learning-rate range test on this setup; "Use this rate" sets the learning rate."""
        if self.is_training:
            return
        if self.lr_finder_dialog is not None and self.lr_finder_dialog.isVisible():
            self.lr_finder_dialog.raise_()
            return
        try:
            cfg = self.config()
        except StudioError as exc:
            show_error(self, "The setup has a problem", str(exc))
            return
        self.load_engine()
        from studio.ui.lr_finder_dialog import LRFinderDialog

        dialog = LRFinderDialog(cfg, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.rate_chosen.connect(self.use_learning_rate)
        dialog.finished.connect(self._on_lr_finder_gone)
        self.lr_finder_dialog = dialog
        dialog.open()

    def _on_lr_finder_gone(self, _result: int = 0) -> None:
        self.lr_finder_dialog = None

    def use_learning_rate(self, lr: float) -> None:
        self.training_panel.lr_spin.setValue(lr)
        self.status.showMessage(f"Learning rate set to {lr:.3g} (from the LR finder)", 6000)
        self.log.append_message(f"learning rate {lr:.3g} from the LR finder")

    def _open_run_from_view(self, run_dir: Path) -> None:
        if self.is_training:
            self.status.showMessage("A run is training: stop it before opening another", 6000)
            return
        if self.open_run(run_dir):
            self.tabs.setCurrentIndex(0)

    # -- first paint, then the engine ----------------------------------------------------------

    def paintEvent(self, event: Any) -> None:  # noqa: N802 - Qt's name
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

        self.torch_thread_is_gui = QThread.currentThread() is QApplication.instance().thread()
        from studio.engine.device import available_devices

        self.torch_import_s = time.perf_counter() - t0
        self._engine_ready = True
        devices = available_devices()
        self.training_panel.set_devices(devices)
        # Auto picks the first of CUDA, MPS, CPU: say which one that is before any run.
        self.status.set_device(devices[0][1] if devices[0][0] != "cpu" else "CPU")
        self.inspector.enabled = True
        self.views.build()
        self._validate_setup()
        self.engine_loaded.emit()

    # -- setup -----------------------------------------------------------------------------------

    def _last_setup(self) -> Config:
        text = self.settings.value("setup/last", "")
        if text:
            import tomllib

            try:
                return config_from_dict(tomllib.loads(str(text)))
            except (StudioError, tomllib.TOMLDecodeError):
                pass  # a stale or hand-edited setup falls back to the defaults
        return Config()

    def set_config(self, cfg: Config) -> None:
        """Show `cfg` in the setup cards."""
        for card in self.cards:
            card.set_config(cfg)
        self._validate_setup()

    def config(self) -> Config:
        """The setup the cards describe; raises `ConfigError` saying what is wrong."""
        return config_from_dict(config_dict(self.cards))

    def _validate_setup(self) -> None:
        try:
            cfg = self.config()
        except StudioError as exc:
            self.setup_error.setText(str(exc))
            self.setup_error.setVisible(True)
            return
        self.setup_error.setVisible(False)
        self.views.set_config(cfg)
        if not self.is_training and len(self.history.step_x) == 0 and len(self.history.epoch_x["train"]) == 0:
            self.history.epochs_total = cfg.train.epochs  # an empty plot already spans the run to come
            self.curves.follow_run()
        if self._engine_ready:
            self.data_panel.set_summary("Reading the data…")
        self.inspector.inspect(cfg)

    def _on_inspected(self, result: Any) -> None:
        self.data_panel.set_summary(result.data_summary, error=result.data_error)
        self.model_panel.set_param_count(result.param_count, result.model_detail)
        if result.task:
            self.curves.set_task(result.task)

    def _lock_setup(self, locked: bool) -> None:
        for card in self.cards:
            for key, f in card.fields.items():
                if key not in TrainingPanel.LIVE:
                    f.set_locked(locked)
        for a in (self.open_config_action, self.new_setup_action, self.open_run_action):
            a.setEnabled(not locked)
        self.recent_menu.setEnabled(not locked)

    def new_setup(self) -> None:
        self.set_config(Config())
        self._forget_run()

    def choose_config(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a setup", str(Path.home()), "TOML config (*.toml)")
        if path:
            self.open_config(Path(path))

    def open_config(self, path: Path) -> None:
        try:
            self.set_config(load_config(path))
        except StudioError as exc:
            show_error(self, "Cannot open this config", str(exc))
            return
        self.status.showMessage(f"Loaded {path.name}", 4000)

    def save_config_as(self) -> None:
        try:
            cfg = self.config()
        except StudioError as exc:
            show_error(self, "The setup has a problem", str(exc))
            return
        path, _ = QFileDialog.getSaveFileName(self, "Save the setup", str(Path.home() / "studio.toml"),
                                              "TOML config (*.toml)")
        if path:
            save_config(cfg, Path(path))
            self.status.showMessage(f"Saved {Path(path).name}", 4000)

    # -- training --------------------------------------------------------------------------------

    @property
    def is_training(self) -> bool:
        return self._thread is not None

    def _runs_base(self) -> Path:
        return self.runs_dir if self.runs_dir is not None else default_runs_dir()

    def start_training(self, resume: bool = False) -> bool:
        """Start a new run (or resume the current one) on the worker thread; False if it could not."""
        if self.is_training:
            return False
        try:
            cfg = self.config()
        except StudioError as exc:
            show_error(self, "Cannot start training", str(exc))
            return False
        if resume:
            run_dir = self.current_run_dir
            if run_dir is None or not RunDir(run_dir).has_checkpoint("last"):
                show_error(self, "Nothing to resume", "Open a stopped run first (File › Open Run).")
                return False
            try:
                saved = load_config(RunDir(run_dir).config)
                cfg = saved.replace_value("train.epochs", max(cfg.train.epochs, saved.train.epochs))
            except StudioError as exc:
                show_error(self, "Cannot resume this run", str(exc))
                return False
            summary = read_summary(run_dir) or {}
            done = int(summary.get("epochs_completed") or 0)
            if done >= cfg.train.epochs and summary.get("status") != "stopped":
                show_info(self, "Nothing left to train",
                          f"All {cfg.train.epochs} epochs of this run are done. Raise Epochs to train further.")
                return False
        else:
            run_dir = new_run_dir(self._runs_base(), cfg.data.source, cfg.model.arch)
            self.history.clear()
            self.metric_cards.clear()
        self.load_engine()
        self.settings.setValue("setup/last", _toml(cfg))
        self.current_run_dir = run_dir
        self._epochs_total = cfg.train.epochs
        self.history.epochs_total = cfg.train.epochs
        self._pending_error = None
        self._quit_requested = False
        self.control = TrainingControl()
        self._resuming = resume
        self.status.reset()
        self.log.append_message(f"{'resuming' if resume else 'starting'} run {run_dir.name}")
        self._thread, self._worker = start_training(cfg, run_dir, self.control, resume=resume,
                                                    connect=self._connect_worker)
        self._thread.finished.connect(self._on_thread_finished)
        QApplication.instance().installEventFilter(self._quit_watcher)
        self._fit_t0 = time.perf_counter()
        self._set_state("training")
        self._update_run_label()
        return True

    def _connect_worker(self, worker: Any) -> None:
        # Bound methods of this window only: PySide queues those to the GUI thread. A lambda here
        # would run in the worker's thread and touch widgets from it.
        worker.fit_started.connect(self._on_fit_started)
        worker.step_ended.connect(self._on_steps)
        worker.epoch_ended.connect(self._on_epoch_end)
        worker.samples_predicted.connect(self._on_samples_predicted)
        worker.message.connect(self._on_message)
        worker.errored.connect(self._on_error)
        worker.finished.connect(self._on_finished)

    def toggle_pause(self) -> None:
        if self.control is None or not self.is_training or self._state == "stopping":
            return
        if self.control.paused:
            self.control.resume()
            self._set_state("training")
            self.log.append_message("resumed")
        else:
            self.control.pause()
            self._set_state("paused")
            self.log.append_message("paused: training waits at the next batch")

    def stop_training(self) -> None:
        if self.control is None or not self.is_training:
            return
        self.control.stop()
        self._set_state("stopping")
        self.status.showMessage("Stopping at the next batch…")

    def _on_lr_committed(self, lr: float) -> None:
        if self.control is not None and self.is_training and self._state != "stopping":
            self.control.set_lr(lr)
            self.status.showMessage(f"Learning rate → {lr:g} from the next step", 5000)

    def _on_batch_size_committed(self, n: int) -> None:
        if self.control is not None and self.is_training and self._state != "stopping":
            self.control.set_batch_size(n)
            self.status.showMessage(f"Batch size → {n} from the next batch", 5000)

    # -- worker signals --------------------------------------------------------------------------

    def _on_fit_started(self, e: Any) -> None:
        self.status.set_device(e.device_name)
        self.curves.set_task(e.task)
        self._epochs_total = e.epochs
        self.history.epochs_total = e.epochs
        self._fit_t0 = time.perf_counter()
        self._fit_frac0 = (e.start_epoch - 1) / max(e.epochs, 1)
        if e.resumed:
            self.history.load_records(read_metrics(Path(e.run_dir)), e.epochs)
        self.model_panel.set_param_count(e.param_count, e.model_summary)
        self.metric_cards.epoch.set(f"{e.start_epoch}/{e.epochs}", "starting")
        self.views.run_started(Path(e.run_dir), e.resumed)

    def _on_steps(self, events: list[Any]) -> None:
        if events:
            self.history.add_steps(events)
            self.views.add_steps(events)
            self._latest_step = events[-1]

    def _on_samples_predicted(self, samples: Any) -> None:
        self.views.set_predictions(samples)

    def _show_progress(self) -> None:
        """Status bar and cards from the latest step, 4 times a second: text changes re-layout
        widgets, and the curves already show every point."""
        e, self._latest_step = self._latest_step, None
        if e is None:
            return
        epochs = max(self._epochs_total, 1)
        frac = (e.epoch - 1 + e.epoch_progress) / epochs
        self.status.set_progress(e.epoch, epochs, frac)
        done = frac - self._fit_frac0
        eta = (time.perf_counter() - self._fit_t0) * (1 - frac) / done if done > 1e-6 else None
        self.status.set_speed(e.samples_per_s, eta)
        self.status.set_memory(e.cuda_memory_allocated, e.cuda_memory_reserved)
        self.metric_cards.epoch.set(f"{e.epoch}/{epochs}", f"step {e.step:,} · {e.epoch_progress:.0%} of epoch")
        smooth = self.history.step_smooth.view()
        shown = smooth[-1] if len(smooth) else e.loss
        self.metric_cards.train_loss.set(_num(shown), f"lr {e.lr:.3g} · batch {e.batch_size}")

    def _on_epoch_end(self, e: Any) -> None:
        self.history.add_epoch(e)
        m = e.metrics
        if m.get("val_loss") is not None:
            self.metric_cards.val_loss.set(_num(m["val_loss"]), f"epoch {e.epoch}")
        if m.get("val_accuracy") is not None:
            self.metric_cards.val_acc.set(f"{m['val_accuracy']:.2%}", f"train {_pct(m.get('train_accuracy'))}")
        self._show_best()
        self.status.set_speed(None, e.eta_s)
        if not self.export_action.isEnabled() and self.current_run_dir is not None:
            self.export_action.setEnabled(RunDir(self.current_run_dir).has_checkpoint("best"))

    def _show_best(self) -> None:
        best = self.history.best_val()
        if best is not None:
            epoch, loss = best
            acc = None
            xs = self.history.epoch_x["val"].view()
            for i, x in enumerate(xs):
                if int(x) == epoch:
                    acc = self.history.epoch_acc["val"].view()[i]
            self.metric_cards.best.set(f"epoch {epoch}", f"val loss {_num(loss)}" +
                                       (f" · acc {acc:.2%}" if acc is not None and math.isfinite(acc) else ""))

    def _on_message(self, m: Any) -> None:
        self.log.append_message(m.text, m.level)

    def _on_error(self, error: RunError) -> None:
        self._pending_error = error

    def _on_finished(self, outcome: RunOutcome) -> None:
        self._show_progress()
        self.last_outcome = outcome
        self._run_status = outcome.status
        s = outcome.summary
        m = s.get("metrics", {}) if s else {}
        if outcome.error is None:
            what = STATE_TEXT.get(outcome.status, outcome.status)
            extra = f", test accuracy {m['test_accuracy']:.2%}" if m.get("test_accuracy") is not None else ""
            self.status.showMessage(f"{what}: {s.get('epochs_completed', 0)} epoch(s){extra}", 10000)
        self.run_finished.emit(outcome)

    def _on_thread_finished(self) -> None:
        thread = self._thread
        if thread is not None:
            thread.wait()
            thread.deleteLater()
        if self._worker is not None:
            self._worker.deleteLater()
        self._thread, self._worker, self.control = None, None, None
        QApplication.instance().removeEventFilter(self._quit_watcher)
        status = self._run_status or "failed"
        if self.current_run_dir is not None and not self.current_run_dir.exists():
            self.current_run_dir = None  # the setup failed before the run folder was made
            self._update_run_label()
        self._set_state(status)
        self.status.set_speed(None, None)
        if self.current_run_dir is not None and RunDir(self.current_run_dir).is_run():
            add_recent_run(self.settings, str(self.current_run_dir))
        error, self._pending_error = self._pending_error, None
        if self._close_after_stop:
            if error is not None:  # no dialog on the way out: the log and stderr keep the reason
                print(f"error: {error.message}", file=sys.stderr)
            quit_after = self._quit_requested
            self.close()
            if quit_after:
                QApplication.quit()  # the quit this run held back, now that the run is saved
            return
        self.views.run_ended(self.current_run_dir)
        if error is not None:
            title = {"input": "Cannot train with this setup", "diverged": "Training diverged"}.get(
                error.kind, "Training failed unexpectedly")
            show_error(self, title, error.message, error.details)

    def _on_quit_requested(self) -> None:
        self._quit_requested = True

    def _on_about_to_quit(self) -> None:
        if self.is_training:
            self._close_after_stop = True  # its end must not show dialogs into a quitting application
        self.shutdown(30.0)

    def shutdown(self, timeout_s: float = 10.0) -> bool:
        """Stop any run and wait for its thread while events flow; True when none is left running."""
        if self.control is not None:
            self.control.stop()
        deadline = time.perf_counter() + timeout_s
        while self._thread is not None and time.perf_counter() < deadline:
            QApplication.processEvents()
            time.sleep(0.005)
        self._close_dialogs()
        left_ms = int(max(deadline - time.perf_counter(), 0.5) * 1000)
        views_done = self.views.shutdown(left_ms)
        self.inspector.pool.waitForDone(left_ms)
        return self._thread is None and views_done

    def _close_dialogs(self) -> None:
        """The LR finder stops at its next step; an export cannot be interrupted, so it is waited for."""
        if self.lr_finder_dialog is not None:
            self.lr_finder_dialog.stop()
            self.lr_finder_dialog.done(0)

    # -- state -----------------------------------------------------------------------------------

    def _set_state(self, state: str) -> None:
        self._state = state
        training = state in ("training", "paused", "stopping")
        self.train_action.setEnabled(not training)
        self.lr_finder_action.setEnabled(not training)
        self.pause_action.setEnabled(state in ("training", "paused"))
        self.stop_action.setEnabled(state in ("training", "paused"))
        paused = state == "paused"
        self.pause_action.setText("Resume" if paused else "Pause")
        self.pause_action.setIcon(themed_icon("play" if paused else "pause"))
        self.pause_action.setData("play" if paused else "pause")
        run = self.current_run_dir
        has_ckpt = run is not None and RunDir(run).has_checkpoint()
        # A run can be exported as soon as it has a checkpoint, even while it goes on training.
        self.export_action.setEnabled(has_ckpt)
        self.resume_action.setEnabled(not training and run is not None and RunDir(run).has_checkpoint("last")
                                      and self._run_status in ("stopped", "failed", "completed", "early_stopped"))
        self._lock_setup(training)
        self.setAcceptDrops(not training)
        self.state_label.setText(STATE_TEXT.get(state, state))
        self.state_label.setProperty("state", state)
        self.state_label.style().unpolish(self.state_label)
        self.state_label.style().polish(self.state_label)
        self._refresh_train_button()

    def _refresh_train_button(self) -> None:
        # The style sheet colours the Train button as the primary action.
        self.train_button.style().unpolish(self.train_button)
        self.train_button.style().polish(self.train_button)
        self.train_action.setIcon(themed_icon("play", "#ffffff"))
        self.stop_action.setIcon(themed_icon("stop", current_theme().danger if self.stop_action.isEnabled()
                                             else current_theme().disabled))

    def _update_run_label(self) -> None:
        run = self.current_run_dir
        self.run_name_label.setText(run.name if run else "")
        self.run_name_label.setToolTip(str(run) if run else "")
        self.setWindowTitle(f"Studio — {run.name}" if run else "Studio")

    def _forget_run(self) -> None:
        self.current_run_dir = None
        self._run_status = None
        self.history.clear()
        self.metric_cards.clear()
        self.status.reset()
        self._update_run_label()
        self._set_state("ready")
        self.views.run_forgotten()

    # -- runs ------------------------------------------------------------------------------------

    def choose_run(self) -> None:
        start = self._runs_base()
        path = QFileDialog.getExistingDirectory(self, "Open a run", str(start if start.is_dir() else Path.home()))
        if path:
            self.open_run(Path(path))

    def open_run(self, run_dir: Path) -> bool:
        """Restore a run's setup and curves from its folder (config.toml, metrics.jsonl, summary.json)."""
        if self.is_training:
            return False
        try:
            run_dir = check_run_dir(Path(run_dir))
            cfg = load_config(RunDir(run_dir).config)
        except StudioError as exc:
            show_error(self, "Cannot open this run", str(exc))
            return False
        self.set_config(cfg)
        records = read_metrics(run_dir)
        self.history.load_records(records, cfg.train.epochs)
        summary = read_summary(run_dir) or {}
        self.current_run_dir = run_dir
        self._epochs_total = cfg.train.epochs
        self._run_status = summary.get("status") or ("stopped" if records else None)
        self.metric_cards.clear()
        self.status.reset()
        done = int(summary.get("epochs_completed") or 0)
        self.metric_cards.epoch.set(f"{done}/{cfg.train.epochs}", STATE_TEXT.get(self._run_status or "", ""))
        latest = self.history.latest_epoch_metrics()
        if latest.get("train_loss") is not None:
            self.metric_cards.train_loss.set(_num(latest["train_loss"]), "last epoch")
        if latest.get("val_loss") is not None:
            self.metric_cards.val_loss.set(_num(latest["val_loss"]), f"epoch {done}")
        if latest.get("val_accuracy") is not None:
            self.metric_cards.val_acc.set(f"{latest['val_accuracy']:.2%}", f"train {_pct(latest.get('train_accuracy'))}")
        self._show_best()
        self.status.set_progress(done, cfg.train.epochs, done / max(cfg.train.epochs, 1))
        self._update_run_label()
        self._set_state(self._run_status or "ready")
        add_recent_run(self.settings, str(run_dir))
        self.log.append_message(f"opened run {run_dir.name} ({STATE_TEXT.get(self._run_status or '', 'no summary')}, "
                                f"{done} epoch(s), {len(records)} records)")
        self.views.run_opened(run_dir)  # before the first paint, the views take it up once built
        return True

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        runs = [r for r in recent_runs(self.settings) if Path(r).is_dir()]
        if not runs:
            a = self.recent_menu.addAction("No recent runs")
            a.setEnabled(False)
            return
        for r in runs:
            self.recent_menu.addAction(Path(r).name, lambda p=r: self.open_run(Path(p)))

    # -- drag and drop ---------------------------------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802
        urls = event.mimeData().urls() if event.mimeData().hasUrls() else []
        if len(urls) == 1 and urls[0].isLocalFile() and not self.is_training:
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        path = Path(event.mimeData().urls()[0].toLocalFile())
        event.acceptProposedAction()
        self.open_path(path)

    def open_path(self, path: Path) -> None:
        """What a dropped path means: a run folder opens, a .toml loads, a CSV or folder becomes the data."""
        if path.is_dir() and RunDir(path).is_run():
            self.open_run(path)
        elif path.suffix.lower() == ".toml":
            self.open_config(path)
        elif path.is_dir() or path.suffix.lower() in (".csv", ".tsv", ".txt"):
            self.data_panel.choose_path(path)
            self.status.showMessage(f"Data: {path.name}", 4000)
        else:
            show_error(self, "Cannot use this file",
                       f"'{path.name}' is neither a folder of images, a CSV file, a config (.toml) nor a run folder.")

    # -- look and persistence --------------------------------------------------------------------

    def set_theme(self, name: str) -> None:
        app = QApplication.instance()
        theme = apply_theme(app, name) if app is not None else current_theme()  # type: ignore[arg-type]
        self.settings.setValue("view/theme", name)
        if name in self.theme_actions:
            self.theme_actions[name].setChecked(True)
        self.curves.apply_theme(theme)
        self.log.apply_theme(theme)
        for a in (self.pause_action, self.resume_action, self.export_action, self.lr_finder_action):
            if a.data():
                a.setIcon(themed_icon(a.data()))
        self._refresh_train_button()
        for card in self.cards:
            for block in card.blocks():
                block.refresh()

    def _restore_window(self) -> None:
        s = self.settings
        geometry = s.value("window/geometry")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        state = s.value("window/state")
        if isinstance(state, QByteArray):
            self.restoreState(state)
        split = s.value("window/splitter")
        if isinstance(split, QByteArray):
            self.main_splitter.restoreState(split)
        theme = str(s.value("view/theme", "system"))
        if theme in self.theme_actions:
            self.theme_actions[theme].setChecked(True)

    def save_settings(self) -> None:
        s = self.settings
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/state", self.saveState())
        s.setValue("window/splitter", self.main_splitter.saveState())
        try:
            s.setValue("setup/last", _toml(self.config()))
        except StudioError:
            pass  # an unfinished setup is not worth keeping over the last good one
        s.sync()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        if self.is_training:
            # The close waits for the run to stop at its next step and save itself; the window
            # closes (and a held-back quit goes on) from _on_thread_finished.
            event.ignore()
            if self._close_after_stop:
                return
            if self._quit_requested or ask_stop_and_close(self):
                self._close_after_stop = True
                self.stop_training()
            return
        self.save_settings()
        self._inspect_timer.stop()  # a closed window starts no new work (a pending check would load data)
        self._close_dialogs()
        if BackgroundCall.running_calls():
            # An evaluation or an export cannot be interrupted: let it end out of sight, then go.
            self.hide()
        self.views.shutdown()
        self.inspector.pool.waitForDone(5000)
        event.accept()

    def _about(self) -> None:
        from studio import __version__

        show_info(self, "About Studio", f"Studio {__version__}\n\nTrain neural networks by pointing and "
                  "clicking, or headless with `studio train`. PyTorch, Qt (PySide6) and pyqtgraph.")


def _toml(cfg: Config) -> str:
    from studio.config import config_to_toml

    return config_to_toml(cfg)


def _num(v: float | None) -> str:
    if v is None or not math.isfinite(v):
        return "–"
    return f"{v:.4f}" if abs(v) < 100 else f"{v:,.1f}"


def _pct(v: float | None) -> str:
    return "–" if v is None or not math.isfinite(v) else f"{v:.2%}"


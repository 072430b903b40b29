"""`ViewTabs`: the tabs beside "Training" (Signals, Evaluation, Predict, Data, Runs) and what feeds them.

The tabs exist from the first paint, each with a placeholder; the views themselves are built once
the engine is loaded (most of them import torch, which must not delay the first paint). They
follow the run controller: the Signals tab draws the window's `RunHistory` and the validation
samples, a run that ends or is opened is evaluated and predicted with, the Runs tab refreshes when
a run starts or ends. Work that takes seconds runs in `BackgroundCall`s, and only where someone
will see it: the evaluation of a finished run at once (it is the question a person asks next),
the data overview when the Data tab is on screen.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QLabel, QTabWidget, QVBoxLayout, QWidget

from studio.config import Config
from studio.engine.events import FitStart
from studio.engine.run_dir import RunDir
from studio.engine.runs_folder import RunsFolder, save_runs_folder
from studio.errors import StudioError
from studio.ui.background_call import BackgroundCall
from studio.ui.chart_style import restyle_plot
from studio.ui.history import RunHistory
from studio.ui.run_controller import OpenedRun, RunController
from studio.ui.theme import current_theme
from studio.ui.worker import RunOutcome

if TYPE_CHECKING:  # torch: imported once the window has painted, not with it
    from studio.engine.prediction_samples import PredictionSamples

TITLES = {"signals": "Signals", "evaluation": "Evaluation", "predict": "Predict", "data": "Data", "runs": "Runs"}
TIPS = {
    "signals": "Is training healthy? Gradient norm, learning rate, throughput, memory, validation samples",
    "evaluation": "How good is the model, and what does it get wrong?",
    "predict": "What does the model say about my own images or values?",
    "data": "What is in my data, and is anything wrong with it?",
    "runs": "Which of my runs is best, and how do their curves compare?",
}


class _TabHost(QWidget):
    """A tab's page: a quiet placeholder until its view is built."""

    def __init__(self, key: str) -> None:
        super().__init__()
        self.setObjectName(f"{key}Tab")
        # The tab widget is as wide as its widest page's minimum: an explicit floor keeps one
        # toolbar-heavy view from widening the whole window and squeezing the setup sidebar.
        self.setMinimumSize(560, 360)
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(10, 8, 10, 8)
        self._placeholder = QLabel("Loading…")
        self._placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._placeholder.setStyleSheet(f"color: {current_theme().muted};")
        self._layout.addWidget(self._placeholder)
        self.view: QWidget | None = None

    def set_view(self, view: QWidget) -> None:
        self._layout.removeWidget(self._placeholder)
        self._placeholder.deleteLater()
        self._layout.addWidget(view)
        self.view = view


class ViewTabs(QObject):
    """Owns the views of the tabs beside "Training", and feeds them what happens to the window's run."""

    open_requested = Signal(object)  # Path: the Runs tab's Open, for the window to show that run
    runs_folder_changed = Signal(object)  # Path: the Runs tab's Change…, saved for the CLI and the window
    notice = Signal(str, int)  # a status-bar message and how long it shows (ms)

    def __init__(
        self,
        tabs: QTabWidget,
        history: RunHistory,
        controller: RunController,
        runs_folder: Callable[[], RunsFolder],
    ) -> None:
        super().__init__(tabs)
        self.tabs = tabs
        self.history = history
        self.controller = controller
        self._runs_folder = runs_folder
        self.hosts = {key: _TabHost(key) for key in TITLES}
        for key, host in self.hosts.items():
            i = tabs.addTab(host, TITLES[key])
            tabs.setTabToolTip(i, TIPS[key])
        self.built = False
        self.signals: Any = None
        self.evaluation: Any = None
        self.predict: Any = None
        self.explorer: Any = None
        self.runs: Any = None
        self._data_config: Config | None = None  # the setup the Data tab should show
        self._data_shown: Config | None = None  # the setup it shows (or is loading)
        self._evaluated: Path | None = None
        self._opened_early: Path | None = None  # a run opened before the views were built
        tabs.currentChanged.connect(self._on_tab_changed)
        controller.run_started.connect(self._on_run_started)
        controller.samples_predicted.connect(self._on_samples)
        controller.run_ended.connect(self._on_run_ended)
        controller.run_opened.connect(self._on_run_opened)
        controller.run_forgotten.connect(self.run_forgotten)

    # -- building (after the first paint) ------------------------------------------------------

    def build(self) -> None:
        if self.built:
            return
        from studio.ui.data_explorer import DataExplorerView
        from studio.ui.evaluation_view import EvaluationView
        from studio.ui.live_insight import LiveInsightView
        from studio.ui.predict_panel import PredictPanel
        from studio.ui.runs_view import RunsView

        self.signals = LiveInsightView(self.history)
        self.evaluation = EvaluationView()
        self.predict = PredictPanel()
        self.predict.set_run(None)
        self.explorer = DataExplorerView()
        folder = self._runs_folder()
        self.runs = RunsView(folder.path)
        self.runs.set_runs_dir(folder.path, folder.why)
        self.runs.run_opened.connect(self._on_run_chosen)
        self.runs.folder_chosen.connect(self._on_folder_chosen)
        for key, view in (
            ("signals", self.signals),
            ("evaluation", self.evaluation),
            ("predict", self.predict),
            ("data", self.explorer),
            ("runs", self.runs),
        ):
            self.hosts[key].set_view(view)
        self.built = True
        if self._opened_early is not None:
            self.run_opened(self._opened_early)
            self._opened_early = None
        self._on_tab_changed(self.tabs.currentIndex())

    def show_tab(self, key: str) -> None:
        self.tabs.setCurrentWidget(self.hosts[key])

    def current_key(self) -> str | None:
        for key, host in self.hosts.items():
            if self.tabs.currentWidget() is host:
                return key
        return None

    # -- what happens to runs -----------------------------------------------------------------

    def _on_run_started(self, e: FitStart) -> None:
        if self.built:
            self.runs.refresh()
            if not e.resumed:  # a new run: the last one's figures would read as this one's
                self._evaluated = None
                self.evaluation.clear_run("This run is evaluated on its test split when it ends.")

    def _on_samples(self, samples: PredictionSamples) -> None:
        if self.built:
            self.signals.set_predictions(samples)

    def _on_run_ended(self, _outcome: RunOutcome) -> None:
        self.run_ended(self.controller.run_dir)

    def _on_run_opened(self, run: OpenedRun) -> None:
        self.run_opened(run.run_dir)

    def run_ended(self, run_dir: Path | None) -> None:
        """A run finished (or stopped, or failed): evaluate and predict with what it saved."""
        if not self.built:
            return
        self.runs.refresh()
        if run_dir is not None and _has_checkpoint(run_dir):
            self._evaluated = None
            self._show_run(run_dir)

    def run_opened(self, run_dir: Path) -> None:
        if not self.built:
            self._opened_early = run_dir
            return
        if _has_checkpoint(run_dir):
            self._show_run(run_dir)
        else:
            self._evaluated = None
            self.evaluation.clear_run(f"{run_dir.name} has no checkpoint to evaluate yet.")
            self.predict.set_run(None)

    def run_forgotten(self) -> None:
        self._opened_early = None
        if self.built:
            self._evaluated = None
            self.evaluation.clear_run()
            self.predict.set_run(None)

    def apply_theme(self) -> None:
        """Re-colour the tabs' plots and the figures drawn in the old theme's colours."""
        if not self.built:
            return
        from pyqtgraph import PlotWidget

        for host in self.hosts.values():  # the views live in the tab hosts, not under this object
            for plot in host.findChildren(PlotWidget):
                restyle_plot(plot)
        self.evaluation.apply_theme()
        self.predict.bar_plot.apply_theme()
        if self.explorer.overview is not None:  # its header and bars carry the old theme's colours
            self.explorer.show_overview(self.explorer.overview)

    def exported(self, run_dir: Path) -> None:
        """A model was exported: Predict uses it, and comes on screen."""
        if self.built:
            self.predict.set_run(run_dir)
            self.show_tab("predict")

    def _show_run(self, run_dir: Path) -> None:
        if self._evaluated != run_dir:
            self._evaluated = run_dir
            self.evaluation.set_run(run_dir)
        self.predict.set_run(run_dir)

    def _on_run_chosen(self, path: str) -> None:
        self.open_requested.emit(Path(path))

    def _on_folder_chosen(self, path: str) -> None:
        try:
            saved = save_runs_folder(path)
        except StudioError as exc:
            self.notice.emit(f"The runs folder was not saved: {exc}", 10000)
            return
        self.runs_folder_changed.emit(Path(path))  # the window takes it first
        self.show_runs_folder(self._runs_folder())
        self.notice.emit(f"New runs go to {path} (saved in {saved.name} for the window and `studio train`)", 8000)

    def show_runs_folder(self, folder: RunsFolder) -> None:
        """The window's runs folder changed: list the runs there and say why it is that one."""
        if self.built:
            self.runs.set_runs_dir(folder.path, folder.why)

    # -- the setup ----------------------------------------------------------------------------

    def set_config(self, config: Config) -> None:
        """The setup changed: the Data tab follows it (now if on screen, else when it is shown)."""
        self._data_config = config
        if self.built and self.current_key() == "data":
            self._load_data()

    def _load_data(self) -> None:
        cfg = self._data_config
        if cfg is None or (
            self._data_shown is not None and self._data_shown.data == cfg.data and self._data_shown.seed == cfg.seed
        ):
            return
        self._data_shown = cfg
        self.explorer.set_config(cfg)

    def _on_tab_changed(self, _index: int) -> None:
        if not self.built:
            return
        key = self.current_key()
        if key == "data":
            self._load_data()
        elif key == "runs":
            self.runs.refresh()

    # -- closing ------------------------------------------------------------------------------

    def shutdown(self, msecs: int = 30000) -> bool:
        """Wait for every background call of these views; True when none is left running."""
        if self.predict is not None:
            self.predict.shutdown(msecs)
        return BackgroundCall.wait_all(msecs)


def _has_checkpoint(run_dir: Path) -> bool:
    return RunDir(run_dir).has_checkpoint()

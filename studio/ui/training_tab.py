"""`TrainingTab`: the first tab, the headline numbers over the live curves of the window's run."""

from __future__ import annotations

from PySide6.QtWidgets import QVBoxLayout, QWidget

from studio.config import Config
from studio.engine.events import FitStart
from studio.ui.curves_view import CurvesView
from studio.ui.history import RunHistory
from studio.ui.metric_cards import MetricCards
from studio.ui.run_controller import RunController
from studio.ui.setup_inspector import Inspection


class TrainingTab(QWidget):
    """`MetricCards` above a `CurvesView`, both of the run's `RunHistory`."""

    def __init__(self, history: RunHistory, controller: RunController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("trainingTab")
        self.history, self.controller = history, controller
        self.metric_cards = MetricCards(history, controller)
        self.curves = CurvesView(history)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(14, 12, 14, 12)
        layout.setSpacing(12)
        layout.addWidget(self.metric_cards)
        layout.addWidget(self.curves, 1)
        controller.run_started.connect(self._on_run_started)

    def _on_run_started(self, e: FitStart) -> None:
        self.curves.set_task(e.task)
        self.metric_cards.set_task(e.task)

    def show_setup(self, cfg: Config) -> None:
        """Before any run, the empty plots already span the run this setup would train."""
        self.metric_cards.loss_name = cfg.train.loss
        if not self.controller.is_training and self.history.is_empty():
            self.history.epochs_total = cfg.train.epochs
            self.curves.follow_run()

    def show_inspection(self, result: Inspection) -> None:
        if result.task:  # regression has no accuracy: RMSE and R² instead
            self.curves.set_task(result.task)
            self.metric_cards.set_task(result.task)
